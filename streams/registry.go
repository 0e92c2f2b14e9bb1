package streams

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Heartbeat marks a connector alive for ttl and registers it, so that
// workers can find it, and notice when it is gone; the heartbeat holds the
// newest stream format it reads (format.go). registered is true when
// the connector was not registered before: on any beat but the first, that
// means a worker declared it dead and removed its sockets.
func (c *Client) Heartbeat(ctx context.Context, connector string, ttl time.Duration) (registered bool, err error) {
	var add *redis.IntCmd
	_, err = c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, c.Keys.Connector(connector), registration(time.Now()), ttl)
		add = p.SAdd(ctx, c.Keys.Connectors(), connector)
		return nil
	})
	if err != nil {
		return false, err
	}
	return add.Val() == 1, nil
}

// AdvertiseConnector records, for ttl, the HTTP address at which other
// connectors reach this one (they forward it the polling requests of the
// sessions it holds).
func (c *Client) AdvertiseConnector(ctx context.Context, connector, addr string, ttl time.Duration) error {
	return c.rdb.Set(ctx, c.Keys.ConnectorAddr(connector), addr, ttl).Err()
}

// ConnectorAddr returns the address a connector advertised, "" when it
// has none (gone, or never advertised).
func (c *Client) ConnectorAddr(ctx context.Context, connector string) (string, error) {
	addr, err := c.rdb.Get(ctx, c.Keys.ConnectorAddr(connector)).Result()
	if err == redis.Nil {
		return "", nil
	}
	return addr, err
}

// Beat records that worker is alive now and returns the workers seen
// alive within ttl (itself included), dropping the others; in the same
// round trip it renews the leases the worker holds (see RenewLeases), and
// writes its worker key, which holds the newest stream format it reads
// (format.go), for as long.
func (c *Client) Beat(ctx context.Context, worker string, now time.Time, ttl time.Duration, tokens map[int]int64) (live []string, renewed map[int]error, err error) {
	return c.beat(ctx, c.Keys.Workers(), c.Keys.Worker(worker), worker, now, ttl, tokens)
}

// heartbeat records member alive now in the registry key and returns the
// members seen alive within ttl, dropping the others.
func (c *Client) heartbeat(ctx context.Context, key, member string, now time.Time, ttl time.Duration) ([]string, error) {
	live, _, err := c.beat(ctx, key, "", member, now, ttl, nil)
	return live, err
}

// beat is heartbeat, with the renewal of member's leases (partition ->
// token) in the same round trip, and, when reg is not "", member's
// registration (the newest stream format it reads) written first in reg
// for as long.
func (c *Client) beat(ctx context.Context, key, reg, member string, now time.Time, ttl time.Duration, tokens map[int]int64) (live []string, renewed map[int]error, err error) {
	var list *redis.StringSliceCmd
	var add *redis.IntCmd
	var set *redis.StatusCmd
	var results func() (map[int]error, bool)
	_, _ = c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		if reg != "" {
			set = p.Set(ctx, reg, registration(now), ttl)
		}
		add = p.ZAdd(ctx, key, redis.Z{Score: float64(now.UnixMilli()), Member: member})
		p.ZRemRangeByScore(ctx, key, "-inf", "("+strconv.FormatInt(now.Add(-ttl).UnixMilli(), 10))
		list = p.ZRange(ctx, key, 0, -1)
		if len(tokens) > 0 {
			results = c.queueRenewals(ctx, p, member, tokens, ttl)
		}
		return nil
	})
	if results != nil {
		renewed = c.renewed(ctx, results, member, tokens, ttl)
	}
	if err = add.Err(); err == nil {
		err = list.Err()
	}
	if err == nil && set != nil {
		err = set.Err()
	}
	return list.Val(), renewed, err
}

// WorkerGone removes a worker from the registry (graceful shutdown).
func (c *Client) WorkerGone(ctx context.Context, worker string) error {
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, c.Keys.Workers(), worker)
		p.Del(ctx, c.Keys.Worker(worker))
		return nil
	})
	return err
}
