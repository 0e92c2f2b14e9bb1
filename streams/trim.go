package streams

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// TrimInbound trims partition p by retention (MINID now-InboundRetention)
// and by length (InboundMaxLen), but never past an entry the workers have
// not applied yet: the bound is the oldest pending entry, or the group's
// last delivered one. A backlog longer than InboundMaxLen therefore
// stays; the lag metric shows it. Returns the number of entries removed.
func (c *Client) TrimInbound(ctx context.Context, p int, now time.Time) (int64, error) {
	key := c.Keys.Inbound(p)
	safe, err := c.safeTrimBound(ctx, key)
	if err != nil || safe.IsZero() {
		return 0, err
	}
	bound := IDAt(now.Add(-c.cfg.InboundRetention))
	if safe.Less(bound) {
		bound = safe
	}
	n, err := c.rdb.XTrimMinID(ctx, key, bound.String()).Result()
	if err != nil {
		return 0, err
	}
	length, err := c.rdb.XLen(ctx, key).Result()
	if err != nil || length <= c.cfg.InboundMaxLen {
		return n, err
	}
	// Too long: find the id that leaves InboundMaxLen entries, within the
	// processed part only. The overshoot since the last run is small, so
	// this range is short.
	excess := length - c.cfg.InboundMaxLen
	end := "(" + safe.String()
	msgs, err := c.rdb.XRangeN(ctx, key, "-", end, excess).Result()
	if err != nil || len(msgs) == 0 {
		return n, err
	}
	last, err := ParseID(msgs[len(msgs)-1].ID)
	if err != nil {
		return n, err
	}
	m, err := c.rdb.XTrimMinID(ctx, key, last.Next().String()).Result()
	return n + m, err
}

// safeTrimBound returns the lowest id the workers still need: the oldest
// pending entry, else the one after the last delivered. Zero means the
// group does not exist yet and nothing may be trimmed.
func (c *Client) safeTrimBound(ctx context.Context, key string) (ID, error) {
	groups, err := c.rdb.XInfoGroups(ctx, key).Result()
	if err != nil {
		if errors.Is(err, redis.Nil) || strings.Contains(err.Error(), "no such key") {
			return ID{}, nil
		}
		return ID{}, err
	}
	for _, g := range groups {
		if g.Name != Group {
			continue
		}
		if g.Pending > 0 {
			sum, err := c.rdb.XPending(ctx, key, Group).Result()
			if err != nil {
				return ID{}, err
			}
			if sum.Count > 0 {
				return ParseID(sum.Lower)
			}
			// Acknowledged in between: what was delivered is applied.
		}
		last, err := ParseID(g.LastDeliveredID)
		if err != nil {
			return ID{}, err
		}
		if last.IsZero() {
			return ID{}, nil
		}
		return last.Next(), nil
	}
	return ID{}, nil
}
