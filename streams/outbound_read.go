package streams

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Reading a connector's outbound stream (out:{connectorId}): its own
// reader, and a recovery replaying another connector's.

// OutboundTail returns the id of the last entry of connector's outbound
// stream, "" when it has none.
func (c *Client) OutboundTail(ctx context.Context, connector string) (string, error) {
	msgs, err := c.rdb.XRevRangeN(ctx, c.Keys.Outbound(connector), "+", "-", 1).Result()
	if err != nil || len(msgs) == 0 {
		return "", err
	}
	return msgs[0].ID, nil
}

// ReadOutbound returns up to count entries of connector's outbound stream
// after id last, waiting up to block for the first; none (and no error)
// when block passed.
func (c *Client) ReadOutbound(ctx context.Context, connector, last string, count int64, block time.Duration) ([]redis.XMessage, error) {
	res, err := c.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{c.Keys.Outbound(connector), last}, Count: count, Block: block}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil || len(res) == 0 {
		return nil, err
	}
	return res[0].Messages, nil
}

// OutboundRange returns the entries of connector's outbound stream from
// start to end (XRANGE bounds; count 0: all of them).
func (c *Client) OutboundRange(ctx context.Context, connector, start, end string, count int64) ([]redis.XMessage, error) {
	if count > 0 {
		return c.rdb.XRangeN(ctx, c.Keys.Outbound(connector), start, end, count).Result()
	}
	return c.rdb.XRange(ctx, c.Keys.Outbound(connector), start, end).Result()
}

// OutboundRevRange returns up to count entries of connector's outbound
// stream from end back to start (XREVRANGE bounds), newest first.
func (c *Client) OutboundRevRange(ctx context.Context, connector, end, start string, count int64) ([]redis.XMessage, error) {
	return c.rdb.XRevRangeN(ctx, c.Keys.Outbound(connector), end, start, count).Result()
}

// Backlogs returns, for each inbound partition, how many entries wait for
// the workers: the group's pending entries plus its lag (entries not
// read yet). A partition with no stream yet has none.
func (c *Client) Backlogs(ctx context.Context) ([]int64, error) {
	return c.backlogs(ctx, c.Keys.Inbound, Group)
}

// backlogs returns, for each partition's stream (named by key), the
// pending entries and the lag of group on it.
func (c *Client) backlogs(ctx context.Context, key func(int) string, group string) ([]int64, error) {
	n := c.cfg.Partitions
	cmds := make([]*redis.XInfoGroupsCmd, n)
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range n {
			cmds[i] = p.XInfoGroups(ctx, key(i))
		}
		return nil
	})
	out := make([]int64, n)
	for i, cmd := range cmds {
		groups, cerr := cmd.Result()
		if cerr != nil {
			if isNoStream(cerr) {
				continue // nothing appended yet
			}
			return nil, cerr
		}
		for _, g := range groups {
			if g.Name == group {
				out[i] = g.Pending + max(g.Lag, 0)
			}
		}
	}
	if err != nil && !isNoStream(err) {
		return nil, err
	}
	return out, nil
}

func isNoStream(err error) bool {
	return err != nil && strings.TrimSpace(err.Error()) == "ERR no such key"
}
