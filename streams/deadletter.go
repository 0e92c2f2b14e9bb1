package streams

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// DeadLetter is an inbound entry that failed to apply too many times. It
// keeps the original fields so that it can be inspected and requeued.
type DeadLetter struct {
	ID        string // id in the dead-letter stream
	Partition int
	Source    string // id it had in the inbound stream
	Error     string
	Attempts  int64
	FailedAt  time.Time
	Values    map[string]any // the original entry's fields
	// Requeued is the id of the copy appended to the inbound stream by
	// Requeue; empty while the letter has not been requeued.
	Requeued string
}

var deadFields = map[string]bool{"dl_source": true, "dl_error": true, "dl_attempts": true, "dl_failed_at": true}

// DeadLetter moves an entry to partition p's dead-letter stream with the
// error that stopped it, and acknowledges it so that the partition moves
// on. Both happen in one transaction (the two keys share a slot).
func (c *Client) DeadLetter(ctx context.Context, p int, msg redis.XMessage, cause error, attempts int64, now time.Time) error {
	return c.deadLetter(ctx, c.Keys.DeadLetters(p), msg.ID, msg.Values, c.Keys.Inbound(p), Group, msg.ID, cause, attempts, now)
}

// deadLetter appends the fields of entry source to the dead-letter stream
// dead and acknowledges ackID of group on stream from, in one
// transaction (the keys share a slot).
func (c *Client) deadLetter(ctx context.Context, dead, source string, values map[string]any, from, group, ackID string, cause error, attempts int64, now time.Time) error {
	vals := make([]any, 0, 2*len(values)+8)
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		vals = append(vals, k, values[k])
	}
	vals = append(vals, "dl_source", source, "dl_error", cause.Error(),
		"dl_attempts", strconv.FormatInt(attempts, 10), "dl_failed_at", strconv.FormatInt(now.UnixMilli(), 10))
	_, err := c.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.XAdd(ctx, &redis.XAddArgs{
			Stream: dead, Values: vals,
			MinID: IDAt(now.Add(-c.cfg.InboundRetention)).String(), Approx: true,
		})
		pipe.XAck(ctx, from, group, ackID)
		return nil
	})
	return err
}

// DeadLetters lists the dead letters of partition p, or of every partition
// when p < 0, oldest first per partition.
func (c *Client) DeadLetters(ctx context.Context, p int) ([]DeadLetter, error) {
	return c.deadLetters(ctx, p, c.Keys.DeadLetters, c.Keys.Requeued)
}

// deadLetters lists the letters of the streams dead names, with the
// copies the hashes requeued name.
func (c *Client) deadLetters(ctx context.Context, p int, dead, requeuedKey func(int) string) ([]DeadLetter, error) {
	parts := []int{p}
	if p < 0 {
		parts = parts[:0]
		for i := 0; i < c.cfg.Partitions; i++ {
			parts = append(parts, i)
		}
	}
	var out []DeadLetter
	for _, part := range parts {
		msgs, err := c.rdb.XRange(ctx, dead(part), "-", "+").Result()
		if err != nil {
			return nil, fmt.Errorf("read dead letters of partition %d: %w", part, err)
		}
		if len(msgs) == 0 {
			continue
		}
		requeued, err := c.rdb.HGetAll(ctx, requeuedKey(part)).Result()
		if err != nil {
			return nil, fmt.Errorf("read requeued dead letters of partition %d: %w", part, err)
		}
		for _, m := range msgs {
			d := decodeDead(part, m)
			d.Requeued = requeued[d.ID]
			out = append(out, d)
		}
	}
	return out, nil
}

func decodeDead(p int, m redis.XMessage) DeadLetter {
	s := func(k string) string { v, _ := m.Values[k].(string); return v }
	d := DeadLetter{ID: m.ID, Partition: p, Source: s("dl_source"), Error: s("dl_error"), Values: map[string]any{}}
	d.Attempts, _ = strconv.ParseInt(s("dl_attempts"), 10, 64)
	ms, _ := strconv.ParseInt(s("dl_failed_at"), 10, 64)
	d.FailedAt = time.UnixMilli(ms).UTC()
	for k, v := range m.Values {
		if !deadFields[k] {
			d.Values[k] = v
		}
	}
	return d
}

var (
	//go:embed scripts/requeue.lua
	requeueSrc    string
	requeueScript = redis.NewScript(requeueSrc)
)

// ErrNoDeadLetter is returned by Requeue for an unknown id.
var ErrNoDeadLetter = errors.New("streams: no such dead letter")

// ErrAlreadyRequeued is returned by Requeue for a letter requeued before.
var ErrAlreadyRequeued = errors.New("streams: dead letter already requeued")

// Requeue appends dead letter id of partition p to the end of its inbound
// stream again (with a new id, so after everything already there, and a
// requeued_from field naming the original) and records the copy's id
// against the letter, atomically. The letter itself stays, so that the log
// still tells that the original was never applied; a letter is requeued
// once (ErrAlreadyRequeued after that).
func (c *Client) Requeue(ctx context.Context, p int, id string) (string, error) {
	return c.requeue(ctx, p, id, c.Keys.DeadLetters(p), c.Keys.Inbound(p), c.Keys.Requeued(p))
}

// requeue appends a copy of letter id of stream dead to stream to, and
// records it in the hash requeued.
func (c *Client) requeue(ctx context.Context, p int, id, dead, to, requeued string) (string, error) {
	msgs, err := c.rdb.XRange(ctx, dead, id, id).Result()
	if err != nil {
		return "", err
	}
	if len(msgs) == 0 {
		return "", fmt.Errorf("%w: %s in partition %d", ErrNoDeadLetter, id, p)
	}
	d := decodeDead(p, msgs[0])
	keys := make([]string, 0, len(d.Values))
	for k := range d.Values {
		if k != "requeued_from" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	args := make([]any, 0, 2*len(keys)+4)
	args = append(args, id, int64(c.cfg.InboundRetention/time.Second))
	for _, k := range keys {
		args = append(args, k, d.Values[k])
	}
	args = append(args, "requeued_from", d.Source)
	nid, err := requeueScript.Run(ctx, c.rdb, []string{to, requeued}, args...).Text()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("%w: %s in partition %d", ErrAlreadyRequeued, id, p)
	}
	return nid, err
}
