package streams

import (
	"context"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Reader is one inbound partition as one consumer of the workers' group
// sees it: the partition's owner (it holds the lease) first claims what
// earlier owners left pending (ClaimStale), in stream order, then reads
// new entries with the other partitions it owns (Client.ReadRound).
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

// Ack acknowledges applied entries.
func (r *Reader) Ack(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	return r.c.rdb.XAck(ctx, r.stream, Group, ids...).Err()
}
