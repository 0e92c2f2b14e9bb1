package streams

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Reader reads one inbound partition as one consumer of the workers' group.
// Its owner holds the partition's lease, so entries come out in stream
// order: first what earlier owners left pending (ClaimStale), then new
// entries (ReadNew).
type Reader struct {
	c        *Client
	stream   string
	consumer string
}

// Reader returns a reader of partition p for consumer.
func (c *Client) Reader(p int, consumer string) *Reader {
	return &Reader{c: c, stream: c.Keys.Inbound(p), consumer: consumer}
}

// EnsureGroup creates the stream and the consumer group when missing. A new
// group starts at the beginning of the stream, so nothing appended before
// the first worker came up is skipped.
func (r *Reader) EnsureGroup(ctx context.Context) error {
	err := r.c.rdb.XGroupCreateMkStream(ctx, r.stream, Group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return err
	}
	return nil
}

// ClaimStale claims, in id order, entries that were delivered to a
// consumer but never acknowledged (its worker crashed or lost its lease),
// once they have been idle for minIdle. It returns the entries to apply
// now; waiting is true while older pending entries are not idle long
// enough yet, in which case the caller must not read new entries (order
// would break) and should call again shortly.
func (r *Reader) ClaimStale(ctx context.Context, minIdle time.Duration, count int64) (msgs []redis.XMessage, waiting bool, err error) {
	pend, err := r.c.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: r.stream, Group: Group, Start: "-", End: "+", Count: count,
	}).Result()
	if err != nil || len(pend) == 0 {
		return nil, false, err
	}
	claimed, _, err := r.c.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: r.stream, Group: Group, Consumer: r.consumer,
		MinIdle: minIdle, Start: pend[0].ID, Count: count,
	}).Result()
	if err != nil {
		return nil, false, err
	}
	got := make(map[string]redis.XMessage, len(claimed))
	for _, m := range claimed {
		if m.Values != nil { // nil: deleted by trimming (Redis 6.2)
			got[m.ID] = m
		}
	}
	// Keep the in-order prefix: stop at the first pending entry that was
	// not claimed because it is not idle enough yet. Entries missing for
	// any other reason were trimmed away and are gone from the PEL.
	for _, pe := range pend {
		m, ok := got[pe.ID]
		if !ok {
			if pe.Idle < minIdle {
				return msgs, true, nil
			}
			continue
		}
		msgs = append(msgs, m)
	}
	return msgs, false, nil
}

// ReadNew returns up to count entries never delivered before, blocking up
// to block for the first one. No entries and no error means the block
// elapsed.
//
// Entries delivered to this consumer earlier but never acknowledged come
// first: a reply of XREADGROUP can be lost after Redis recorded the
// delivery (Redis restarted, connection cut), and the client's automatic
// retry then reads the entries after them. Those lost entries are this
// consumer's own pending ones; they are returned, in stream order, before
// any newer entry, so nothing is skipped and order holds.
func (r *Reader) ReadNew(ctx context.Context, count int64, block time.Duration) ([]redis.XMessage, error) {
	msgs, _, err := r.ReadNewAck(ctx, nil, nil, nil, count, block)
	return msgs, err
}

// read is XREADGROUP from id: ">" for new entries, "0" for this
// consumer's pending ones (never blocks).
func (r *Reader) read(ctx context.Context, id string, count int64, block time.Duration) ([]redis.XMessage, error) {
	args := &redis.XReadGroupArgs{
		Group: Group, Consumer: r.consumer, Streams: []string{r.stream, id}, Count: count, Block: block,
	}
	if block == 0 {
		args.Block = -1 // no BLOCK argument
	}
	return r.messages(ctx, r.c.rdb.XReadGroup(ctx, args))
}

// messages unpacks an XREADGROUP reply; a missing group (the stream was
// deleted) is created again.
func (r *Reader) messages(ctx context.Context, cmd *redis.XStreamSliceCmd) ([]redis.XMessage, error) {
	res, err := cmd.Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		if strings.HasPrefix(err.Error(), "NOGROUP") {
			if gerr := r.EnsureGroup(ctx); gerr != nil {
				return nil, gerr
			}
			return nil, nil
		}
		return nil, err
	}
	if len(res) == 0 {
		return nil, nil
	}
	return res[0].Messages, nil
}

// ReadNewAck acknowledges ack (entries applied since the last read) and
// reads new entries like ReadNew, in one round trip: first the commands
// before adds (when not nil: the writes of the entries applied last),
// then the acknowledgement, then the read, which blocks. beforeErr is
// what the function before returned says about its commands once they
// ran. Like ReadNew, it returns this consumer's own pending entries first
// when a lost reply left some; held are entries the caller keeps pending
// on purpose (applied, acknowledged with a later read), which are not
// lost and are never returned again.
func (r *Reader) ReadNewAck(ctx context.Context, ack, held []string, before func(redis.Pipeliner) func() error, count int64, block time.Duration) (msgs []redis.XMessage, beforeErr, err error) {
	var (
		read  *redis.XStreamSliceCmd
		pend  *redis.XPendingExtCmd
		check func() error
	)
	_, _ = r.c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		if before != nil {
			check = before(p)
		}
		if len(ack) > 0 {
			p.XAck(ctx, r.stream, Group, ack...)
		}
		read = p.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: Group, Consumer: r.consumer, Streams: []string{r.stream, ">"},
			Count: count, Block: block,
		})
		// This consumer's oldest pending entry, after the read: anything
		// older than what the read returned was lost on its way.
		pend = p.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: r.stream, Group: Group, Start: "-", End: "+", Count: int64(len(held)) + 1, Consumer: r.consumer,
		})
		return nil
	})
	if check != nil {
		beforeErr = check()
	}
	msgs, err = r.messages(ctx, read)
	if err != nil {
		return nil, beforeErr, err
	}
	oldest, err := pend.Result()
	if err != nil {
		return msgs, beforeErr, nil // the read stands; the next one checks again
	}
	lost := ""
	for _, pe := range oldest {
		if !slices.Contains(held, pe.ID) {
			lost = pe.ID
			break
		}
	}
	if lost == "" || (len(msgs) > 0 && lost == msgs[0].ID) {
		return msgs, beforeErr, nil
	}
	all, err := r.read(ctx, "0", count+int64(len(held)), 0)
	msgs = slices.DeleteFunc(all, func(m redis.XMessage) bool { return slices.Contains(held, m.ID) })
	return msgs, beforeErr, err
}

// Ack acknowledges applied entries.
func (r *Reader) Ack(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	return r.c.rdb.XAck(ctx, r.stream, Group, ids...).Err()
}
