package streams

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotDurable is returned when fewer replicas than ROOMSTREAM_DURABLE_REPLICAS
// acknowledged a write in time. The write itself happened on the master.
var ErrNotDurable = errors.New("streams: write not acknowledged by enough replicas")

// ErrPartitionMismatch is returned when Redis already holds data written
// with another partition count.
var ErrPartitionMismatch = errors.New("streams: partition count differs from the one this Redis was set up with")

// Client is the Redis side of roomstream: the client, the key namer and the
// stream configuration.
type Client struct {
	rdb  redis.UniversalClient
	cfg  Config
	Keys Keys
	// format is the stream format written (see format.go): the previous
	// one until RefreshFormat has looked at the live processes.
	format atomic.Int32
	// formats is what RefreshFormat found last.
	formatsMu sync.Mutex
	formats   Formats
}

// New wraps an open Redis client.
func New(rdb redis.UniversalClient, cfg Config) *Client {
	c := &Client{rdb: rdb, cfg: cfg, Keys: NewKeys(cfg.KeyPrefix)}
	c.format.Store(FormatPrevious)
	return c
}

// Redis returns the underlying client.
func (c *Client) Redis() redis.UniversalClient { return c.rdb }

// Config returns the stream configuration.
func (c *Client) Config() Config { return c.cfg }

// Partitions returns the number of inbound partitions.
func (c *Client) Partitions() int { return c.cfg.Partitions }

// EnsureMeta records the partition count on first use and refuses to run
// against a Redis that was set up with another one: rooms would change
// partitions and lose their order.
func (c *Client) EnsureMeta(ctx context.Context) error {
	key := c.Keys.Meta()
	want := strconv.Itoa(c.cfg.Partitions)
	if _, err := c.rdb.HSetNX(ctx, key, "partitions", want).Result(); err != nil {
		return fmt.Errorf("record partition count: %w", err)
	}
	got, err := c.rdb.HGet(ctx, key, "partitions").Result()
	if err != nil {
		return fmt.Errorf("read partition count: %w", err)
	}
	if got != want {
		return fmt.Errorf("%w: ROOMSTREAM_PARTITIONS is %s but %s holds data for %s partitions (use another ROOMSTREAM_KEY_PREFIX, or drain and delete %s)",
			ErrPartitionMismatch, want, key, got, key)
	}
	return nil
}

// Append writes an inbound envelope to its room's partition stream and
// returns the entry id. With DurableReplicas set it also waits for that
// many replicas, so that an accepted event survives a failover.
func (c *Client) Append(ctx context.Context, e *Envelope) (string, error) {
	key := c.Keys.Inbound(Partition(e.RoomID, c.cfg.Partitions))
	args := &redis.XAddArgs{Stream: key, Values: e.ValuesIn(c.WriteFormat())}
	if c.cfg.DurableReplicas == 0 {
		return c.rdb.XAdd(ctx, args).Result()
	}
	var add *redis.StringCmd
	err := c.Durably(ctx, key, func(p redis.Pipeliner) { add = p.XAdd(ctx, args) })
	if add != nil && add.Err() != nil {
		return "", add.Err()
	}
	if add == nil {
		return "", err
	}
	return add.Val(), err
}

// AppendBatch appends several inbound envelopes in one pipeline and
// returns each one's entry id or error. Envelopes of one room keep their
// order. Connectors use it to append the events of many sockets in one
// round trip; with DurableReplicas set, use Append.
func (c *Client) AppendBatch(ctx context.Context, envs []*Envelope) ([]string, []error) {
	ids, errs := make([]string, len(envs)), make([]error, len(envs))
	cmds := make([]*redis.StringCmd, len(envs))
	format := c.WriteFormat()
	_, _ = c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, e := range envs {
			cmds[i] = p.XAdd(ctx, &redis.XAddArgs{Stream: c.Keys.Inbound(Partition(e.RoomID, c.cfg.Partitions)), Values: e.ValuesIn(format)})
		}
		return nil
	})
	for i, cmd := range cmds {
		ids[i], errs[i] = cmd.Result()
	}
	return ids, errs
}

// OutboundArgs returns the XADD arguments that deliver o to a connector,
// trimming that connector's stream to the recovery window.
func (c *Client) OutboundArgs(connector string, o *Outbound, now time.Time) *redis.XAddArgs {
	return c.OutboundAppend(connector, o, c.OutboundMinID(now))
}

// OutboundMinID is the oldest entry id an outbound stream keeps at now:
// what the recovery window still covers.
func (c *Client) OutboundMinID(now time.Time) string {
	return IDAt(now.Add(-c.cfg.RecoveryWindow)).String()
}

// OutboundAppend returns the XADD arguments that deliver o to a
// connector, trimming its stream to minID ("": no trimming).
func (c *Client) OutboundAppend(connector string, o *Outbound, minID string) *redis.XAddArgs {
	return &redis.XAddArgs{Stream: c.Keys.Outbound(connector), MinID: minID, Approx: minID != "", Values: o.ValuesIn(c.WriteFormat())}
}

// Durably runs fn's commands in one pipeline on the master that owns key,
// followed by WAIT for DurableReplicas replicas. WAIT only counts writes of
// its own connection, hence one pipeline on one node.
func (c *Client) Durably(ctx context.Context, key string, fn func(redis.Pipeliner)) error {
	var node redis.Cmdable = c.rdb
	if cc, ok := c.rdb.(*redis.ClusterClient); ok {
		n, err := cc.MasterForKey(ctx, key)
		if err != nil {
			return err
		}
		node = n
	}
	var wait *redis.IntCmd
	_, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
		fn(p)
		wait = redis.NewIntCmd(ctx, "wait", c.cfg.DurableReplicas, c.cfg.DurableTimeout.Milliseconds())
		_ = p.Process(ctx, wait)
		return nil
	})
	if err != nil {
		return err
	}
	if n := wait.Val(); n < int64(c.cfg.DurableReplicas) {
		return fmt.Errorf("%w: %d of %d", ErrNotDurable, n, c.cfg.DurableReplicas)
	}
	return nil
}

// IsUnavailable reports whether err means Redis could not be reached or
// could not serve the request right now (as opposed to a script or data
// error): such failures are retried without limit and never dead-lettered.
// A deadline passing counts: Redis did not answer in time. It is the one
// classifier of Redis errors; a retry loop stops on its own context
// besides (see the connector's appendRetrying).
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrNotDurable) {
		return true
	}
	var re redis.Error
	if errors.As(err, &re) {
		// The reply's first word: BUSYKEY (a RESTORE onto an existing key)
		// is a data error, BUSY (a script running too long) is not.
		code, _, _ := strings.Cut(re.Error(), " ")
		switch code {
		case "LOADING", "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "READONLY", "BUSY", "NOREPLICAS", "MOVED", "ASK":
			return true
		}
		return false
	}
	// Anything that is not a Redis reply is a network or pool error.
	return !errors.Is(err, redis.Nil)
}
