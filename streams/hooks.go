package streams

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// What the hooks processes share through Redis: their registry, the
// leases of the feed partitions they deliver, the consumer group on the
// feed streams, and the webhook dead letters.

// HooksHeartbeat records that hooks process id is alive now and returns
// those seen alive within ttl (itself included), dropping the others.
func (c *Client) HooksHeartbeat(ctx context.Context, id string, now time.Time, ttl time.Duration) ([]string, error) {
	return c.heartbeat(ctx, c.Keys.Hooks(), id, now, ttl)
}

// HooksGone removes a hooks process from the registry (graceful shutdown).
func (c *Client) HooksGone(ctx context.Context, id string) error {
	return c.rdb.ZRem(ctx, c.Keys.Hooks(), id).Err()
}

// AcquireHooksLease takes the lease of partition p's feed for owner when
// it is free and returns its token; 0 means another holds it.
func (c *Client) AcquireHooksLease(ctx context.Context, p int, owner string, ttl time.Duration) (int64, error) {
	return c.acquire(ctx, c.Keys.HooksLease(p), c.Keys.HooksEpoch(p), owner, ttl)
}

// RenewHooksLease extends a feed lease; ErrLeaseLost when gone.
func (c *Client) RenewHooksLease(ctx context.Context, p int, owner string, token int64, ttl time.Duration) error {
	return c.renew(ctx, c.Keys.HooksLease(p), owner, token, ttl)
}

// ReleaseHooksLease gives a feed lease up at once.
func (c *Client) ReleaseHooksLease(ctx context.Context, p int, owner string, token int64) error {
	return leaseRelease.Run(ctx, c.rdb, []string{c.Keys.HooksLease(p)}, owner, token).Err()
}

// EnsureHooksGroup creates the hooks' consumer group on partition p's
// feed and on its stream of requeued dead letters, from their first
// entry: a deployment that starts delivering webhooks delivers what the
// feed still holds.
func (c *Client) EnsureHooksGroup(ctx context.Context, p int) error {
	for _, key := range []string{c.Keys.Feed(p), c.Keys.WebhookRedo(p)} {
		err := c.rdb.XGroupCreateMkStream(ctx, key, HooksGroup, "0").Err()
		if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
			return err
		}
	}
	return nil
}

// HooksRead is one read of a feed partition for the hooks: from the feed
// and from its requeued dead letters. An id of "0" or above reads the
// consumer's own pending entries after it; ">" reads new ones.
type HooksRead struct {
	Consumer         string
	FeedID, RedoID   string
	Count            int64
	Block            time.Duration // 0: do not wait
	Feed, Redo       []redis.XMessage
	FeedKey, RedoKey string
}

// ReadHooks reads partition p's feed and requeued letters for the hooks
// group as r says, filling r.Feed and r.Redo. Entries trimmed away while
// pending come back with no fields.
func (c *Client) ReadHooks(ctx context.Context, p int, r *HooksRead) error {
	r.FeedKey, r.RedoKey = c.Keys.Feed(p), c.Keys.WebhookRedo(p)
	block := r.Block
	if block == 0 || r.FeedID != ">" || r.RedoID != ">" {
		block = -1 // no BLOCK argument: pending reads never wait
	}
	res, err := c.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: HooksGroup, Consumer: r.Consumer,
		Streams: []string{r.FeedKey, r.RedoKey, r.FeedID, r.RedoID}, Count: r.Count, Block: block}).Result()
	r.Feed, r.Redo = nil, nil
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, s := range res {
		switch s.Stream {
		case r.FeedKey:
			r.Feed = s.Messages
		case r.RedoKey:
			r.Redo = s.Messages
		}
	}
	return nil
}

// AckHooks acknowledges entries of partition p's feed (redo: of its
// requeued letters, which are then deleted: nothing else reads them).
func (c *Client) AckHooks(ctx context.Context, p int, redo bool, ids ...string) error {
	if !redo {
		return c.rdb.XAck(ctx, c.Keys.Feed(p), HooksGroup, ids...).Err()
	}
	key := c.Keys.WebhookRedo(p)
	_, err := c.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.XAck(ctx, key, HooksGroup, ids...)
		pipe.XDel(ctx, key, ids...)
		return nil
	})
	return err
}

// RedoEvent decodes a requeued webhook dead letter of partition p: the
// event it was, under its first id (requeued_from), so that its
// deliveries carry the same webhook id.
func RedoEvent(p int, msg redis.XMessage) (*FeedEvent, error) {
	from, _ := msg.Values["requeued_from"].(string)
	if from == "" {
		from = msg.ID
	}
	return DecodeFeedEvent(p, from, msg.Values)
}

// WebhookDeadLetter moves an event whose delivery failed too often to
// partition p's webhook dead letters (under its event's first id) and
// acknowledges it, in one transaction.
func (c *Client) WebhookDeadLetter(ctx context.Context, p int, msg redis.XMessage, redo bool, cause error, attempts int64, now time.Time) error {
	from, group := c.Keys.Feed(p), HooksGroup
	source, values := msg.ID, msg.Values
	if redo {
		from = c.Keys.WebhookRedo(p)
		if orig, _ := msg.Values["requeued_from"].(string); orig != "" {
			source = orig
			values = make(map[string]any, len(msg.Values))
			for k, v := range msg.Values {
				if k != "requeued_from" {
					values[k] = v
				}
			}
		}
	}
	if err := c.deadLetter(ctx, c.Keys.WebhookDead(p), source, values, from, group, msg.ID, cause, attempts, now); err != nil {
		return err
	}
	if redo {
		return c.rdb.XDel(ctx, from, msg.ID).Err()
	}
	return nil
}

// WebhookDeadLetters lists the webhook dead letters of partition p, or of
// every partition when p < 0, oldest first per partition. A letter's
// Source is its event's feed entry id.
func (c *Client) WebhookDeadLetters(ctx context.Context, p int) ([]DeadLetter, error) {
	return c.deadLetters(ctx, p, c.Keys.WebhookDead, c.Keys.WebhookRequeued)
}

// RequeueWebhook hands webhook dead letter id of partition p to the hooks
// again: a copy goes to feed:{p}:redo, which they read beside the feed,
// and is delivered with the event's own webhook id. A letter is requeued
// once (ErrAlreadyRequeued after that).
func (c *Client) RequeueWebhook(ctx context.Context, p int, id string) (string, error) {
	return c.requeue(ctx, p, id, c.Keys.WebhookDead(p), c.Keys.WebhookRedo(p), c.Keys.WebhookRequeued(p))
}

// HooksBacklogs returns, for each partition's feed, the events the hooks
// have not delivered yet: pending in their group plus not read yet.
func (c *Client) HooksBacklogs(ctx context.Context) ([]int64, error) {
	return c.backlogs(ctx, c.Keys.Feed, HooksGroup)
}
