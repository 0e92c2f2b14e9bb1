package streams

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Round is one round trip of a worker's read loop over the partitions it
// owns: the writes of what it applied last, the acknowledgements of what
// is written, then one XREADGROUP over every partition, so that under
// load one read returns what waits in all of them.
type Round struct {
	// Consumer is the worker's name in the group.
	Consumer string
	// Writes, when not nil, queues commands to run first: the outbound
	// entries and side effects of the entries applied last. The function
	// it returns tells, once the round ran, whether all of them were
	// written.
	Writes func(redis.Pipeliner) func() error
	// Acks are entries applied and written, by partition.
	Acks map[int][]string
	// New are the partitions whose new entries ('>') to read.
	New []int
	// Own are partitions whose pending entries delivered to this consumer
	// ('0') to read instead: after a round whose reply was lost, Redis
	// may have recorded deliveries the worker never saw.
	Own []int
	// Count is the most entries read per partition.
	Count int64
	// Block is how long the read may wait for a first entry (0: it does
	// not wait). It does not wait when Own is not empty.
	Block time.Duration
}

// RoundResult is what a round read.
type RoundResult struct {
	// Entries are the entries read, by partition, in stream order.
	Entries map[int][]redis.XMessage
	// Gone are pending entries of Own partitions that trimming deleted:
	// nothing to apply, only to acknowledge.
	Gone map[int][]string
	// WritesErr is what Round.Writes said about its commands.
	WritesErr error
}

// noRetry marks a command that must not be sent again on its own: a
// pipeline holding it is not retried by the client. An XREADGROUP whose
// reply was lost delivered its entries all the same; read again, it
// would return the entries after them, which would then be applied
// first. Without the retry the caller sees the error and reads its own
// pending entries next (Round.Own).
type noRetry struct{ *redis.XStreamSliceCmd }

func (noRetry) NoRetry() bool { return true }

// ReadRound runs r on via (the worker's client, or a connection of its
// own that another can unblock: see ClientUnblock). err is the read's:
// when it is not nil the read may still have been delivered, and the
// caller reads its own pending entries of those partitions next.
func (c *Client) ReadRound(ctx context.Context, via redis.Cmdable, r Round) (RoundResult, error) {
	var res RoundResult
	var check func() error
	var own, fresh *redis.XStreamSliceCmd
	byKey := make(map[string]int, len(r.New)+len(r.Own))
	_, _ = via.Pipelined(ctx, func(p redis.Pipeliner) error {
		if r.Writes != nil {
			check = r.Writes(p)
		}
		for part, ids := range r.Acks {
			if len(ids) > 0 {
				p.XAck(ctx, c.Keys.Inbound(part), Group, ids...)
			}
		}
		if len(r.Own) > 0 {
			own = c.readGroup(ctx, r.Consumer, r.Own, "0", r.Count, 0, byKey)
			_ = p.Process(ctx, noRetry{own})
		}
		if len(r.New) > 0 {
			block := r.Block
			if len(r.Own) > 0 {
				block = 0
			}
			fresh = c.readGroup(ctx, r.Consumer, r.New, ">", r.Count, block, byKey)
			_ = p.Process(ctx, noRetry{fresh})
		}
		return nil
	})
	if check != nil {
		res.WritesErr = check()
	}
	var firstErr error
	for _, cmd := range []*redis.XStreamSliceCmd{own, fresh} {
		if cmd == nil {
			continue
		}
		got, err := cmd.Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		for _, s := range got {
			part, ok := byKey[s.Stream]
			if !ok {
				continue
			}
			for _, m := range s.Messages {
				if m.Values == nil { // a pending entry trimming deleted
					if res.Gone == nil {
						res.Gone = map[int][]string{}
					}
					res.Gone[part] = append(res.Gone[part], m.ID)
					continue
				}
				if res.Entries == nil {
					res.Entries = map[int][]redis.XMessage{}
				}
				res.Entries[part] = append(res.Entries[part], m)
			}
		}
	}
	if firstErr != nil && strings.HasPrefix(firstErr.Error(), "NOGROUP") {
		// A stream (or its group) was deleted: made again, nothing was
		// delivered.
		for _, part := range append(append([]int(nil), r.Own...), r.New...) {
			if err := c.Reader(part, r.Consumer).EnsureGroup(ctx); err != nil {
				return res, err
			}
		}
	}
	return res, firstErr
}

// readGroup builds an XREADGROUP of parts from id ('>' or '0'), recording
// which stream key is which partition.
func (c *Client) readGroup(ctx context.Context, consumer string, parts []int, id string, count int64, block time.Duration, byKey map[string]int) *redis.XStreamSliceCmd {
	args := make([]any, 0, 10+2*len(parts))
	args = append(args, "xreadgroup", "group", Group, consumer, "count", count)
	if block > 0 {
		args = append(args, "block", strconv.FormatInt(block.Milliseconds(), 10))
	}
	args = append(args, "streams")
	for _, part := range parts {
		key := c.Keys.Inbound(part)
		byKey[key] = part
		args = append(args, key)
	}
	for range parts {
		args = append(args, id)
	}
	return redis.NewXStreamSliceCmd(ctx, args...)
}

// UnblockClient wakes the connection with CLIENT ID id from a blocking
// read: its XREADGROUP returns as if its time had passed.
func (c *Client) UnblockClient(ctx context.Context, id int64) error {
	return c.rdb.ClientUnblock(ctx, id).Err()
}
