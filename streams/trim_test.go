package streams

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/infra/testredis"
)

// TestTrimInbound: retention and length trim what the workers applied,
// never an entry still pending or not yet delivered.
func TestTrimInbound(t *testing.T) {
	rdb := testredis.Start(t, nil).Client()
	ctx := context.Background()
	now := time.Now()
	c := New(rdb, Config{Partitions: 1, KeyPrefix: "t:", InboundRetention: time.Hour, InboundMaxLen: 1000})
	key := c.Keys.Inbound(0)
	add := func(at time.Time, n int) {
		for i := 0; i < n; i++ {
			id := ID{Ms: uint64(at.UnixMilli()), Seq: uint64(i + 1)}
			if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, ID: id.String(), Values: []any{"i", i}}).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	add(now.Add(-3*time.Hour), 100) // old
	add(now.Add(-2*time.Hour), 100) // old
	add(now.Add(-time.Minute), 50)  // recent
	// No group yet: nothing was applied, nothing may go.
	if n, err := c.TrimInbound(ctx, 0, now); err != nil || n != 0 {
		t.Fatalf("trim without a group: %d %v", n, err)
	}
	r := c.Reader(0, "w")
	if err := r.EnsureGroup(ctx); err != nil {
		t.Fatal(err)
	}
	msgs, err := readNew(t, c, 0, "w", 150)
	if err != nil || len(msgs) != 150 {
		t.Fatalf("read: %d %v", len(msgs), err)
	}
	var ids []string
	for _, m := range msgs[:120] {
		ids = append(ids, m.ID)
	}
	if err := r.Ack(ctx, ids...); err != nil {
		t.Fatal(err)
	}
	// Entries 121-150 are pending, 151-250 undelivered: only the first 120
	// (older than the retention and applied) may go.
	n, err := c.TrimInbound(ctx, 0, now)
	if err != nil || n != 120 {
		t.Fatalf("trimmed %d (%v), want the 120 applied old entries", n, err)
	}
	first, _ := rdb.XRangeN(ctx, key, "-", "+", 1).Result()
	if first[0].ID != msgs[120].ID {
		t.Errorf("first entry left %s, want the oldest pending %s", first[0].ID, msgs[120].ID)
	}
	// Apply the rest: the old ones go, the recent ones stay (retention).
	rest, _ := readNew(t, c, 0, "w", 1000)
	ids = ids[:0]
	for _, m := range append(msgs[120:], rest...) {
		ids = append(ids, m.ID)
	}
	if err := r.Ack(ctx, ids...); err != nil {
		t.Fatal(err)
	}
	if n, err := c.TrimInbound(ctx, 0, now); err != nil || n != 80 {
		t.Fatalf("trimmed %d (%v), want the 80 remaining old entries", n, err)
	}
	if l := rdb.XLen(ctx, key).Val(); l != 50 {
		t.Errorf("%d entries left, want the 50 recent ones", l)
	}
}

// TestTrimInboundByLength keeps at most InboundMaxLen applied entries.
func TestTrimInboundByLength(t *testing.T) {
	rdb := testredis.Start(t, nil).Client()
	ctx := context.Background()
	c := New(rdb, Config{Partitions: 1, KeyPrefix: "t:", InboundRetention: 24 * time.Hour, InboundMaxLen: 1000})
	key := c.Keys.Inbound(0)
	r := c.Reader(0, "w")
	if err := r.EnsureGroup(ctx); err != nil {
		t.Fatal(err)
	}
	pipe := rdb.Pipeline()
	for i := 0; i < 1500; i++ {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"i", fmt.Sprint(i)}})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	msgs, _ := readNew(t, c, 0, "w", 1200) // 300 never delivered
	var ids []string
	for _, m := range msgs {
		ids = append(ids, m.ID)
	}
	if err := r.Ack(ctx, ids...); err != nil {
		t.Fatal(err)
	}
	n, err := c.TrimInbound(ctx, 0, time.Now())
	if err != nil || n != 500 {
		t.Fatalf("trimmed %d (%v), want 500", n, err)
	}
	if l := rdb.XLen(ctx, key).Val(); l != 1000 {
		t.Errorf("length %d, want 1000", l)
	}
	// Undelivered entries are never trimmed for length: 1,300 unapplied
	// entries stay even above the limit.
	pipe = rdb.Pipeline()
	for i := 0; i < 1000; i++ {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"i", "more"}})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TrimInbound(ctx, 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	if l := rdb.XLen(ctx, key).Val(); l != 1300 {
		t.Errorf("length %d, want the 1300 unapplied entries", l)
	}
}
