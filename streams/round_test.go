package streams_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/e2e/harness"
	"github.com/roomstream/roomstream/infra/testredis"
	"github.com/roomstream/roomstream/streams"
)

func ids(msgs []redis.XMessage) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.ID)
	}
	return out
}

// roundOn returns a client of a private redis-server with partitions 0
// to n-1 and their group, and a function appending an entry to one.
func roundOn(t *testing.T, rdb *redis.Client, n int) (*streams.Client, func(p int) string) {
	t.Helper()
	c := streams.New(rdb, streams.Config{Partitions: n, KeyPrefix: "t:"})
	for p := range n {
		if err := c.Reader(p, "w1").EnsureGroup(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return c, func(p int) string {
		t.Helper()
		id, err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: c.Keys.Inbound(p), Values: []string{"v", "x"}}).Result()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
}

// One round reads every partition given, acknowledges first and runs the
// caller's writes before anything, and reports their failure apart from
// the read.
func TestReadRound(t *testing.T) {
	rdb := testredis.Start(t, nil).Client()
	c, add := roundOn(t, rdb, 3)
	ctx := context.Background()
	a1, b1, a2 := add(0), add(2), add(0)
	add(1) // not read: partition 1 is not in the round
	written := func(p redis.Pipeliner) func() error { return p.Set(ctx, "t:written", "yes", 0).Err }
	res, err := c.ReadRound(ctx, rdb, streams.Round{Consumer: "w1", New: []int{0, 2}, Count: 10, Block: 50 * time.Millisecond, Writes: written})
	if err != nil || res.WritesErr != nil {
		t.Fatalf("round: %v, writes: %v", err, res.WritesErr)
	}
	if diff := cmp.Diff(map[int][]string{0: {a1, a2}, 2: {b1}}, map[int][]string{0: ids(res.Entries[0]), 2: ids(res.Entries[2])}); diff != "" {
		t.Errorf("entries (-want,+got):\n%s", diff)
	}
	if rdb.Get(ctx, "t:written").Val() != "yes" {
		t.Error("the writes did not run")
	}
	// Acknowledged in the next round, before its read.
	failing := func(p redis.Pipeliner) func() error { return p.HSet(ctx, "t:written", "f", "v").Err } // wrong type
	res, err = c.ReadRound(ctx, rdb, streams.Round{Consumer: "w1", New: []int{0, 2}, Count: 10, Block: 50 * time.Millisecond,
		Acks: map[int][]string{0: {a1, a2}, 2: {b1}}, Writes: failing})
	if err != nil || res.WritesErr == nil || len(res.Entries) != 0 {
		t.Fatalf("a refused write: read err %v, writes err %v, entries %v", err, res.WritesErr, res.Entries)
	}
	for _, p := range []int{0, 2} {
		if n := rdb.XPending(ctx, c.Keys.Inbound(p), streams.Group).Val().Count; n != 0 {
			t.Errorf("partition %d: %d entries still pending after their acknowledgement", p, n)
		}
	}
}

// A read whose reply is lost (the connection breaks after Redis recorded
// the delivery) is not sent again behind the caller's back: it would
// return the entries after the lost ones, to be applied first. The round
// fails, and the next one reads the consumer's own pending entries
// (Own): the lost ones come back, in order, before any newer entry.
func TestReadRoundAfterALostReply(t *testing.T) {
	srv := testredis.Start(t, nil)
	proxy := harness.StartProxy(t, srv.Addr())
	direct := srv.Client()
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr(), MaxRetries: 3})
	t.Cleanup(func() { _ = rdb.Close() })
	c, add := roundOn(t, direct, 2)
	via := streams.New(rdb, c.Config())
	ctx := context.Background()
	e1, e2, f1 := add(0), add(0), add(1)

	proxy.LoseReply("xreadgroup")
	_, err := via.ReadRound(ctx, rdb, streams.Round{Consumer: "w1", New: []int{0, 1}, Count: 10, Block: 50 * time.Millisecond})
	if err == nil {
		t.Fatal("a round whose reply was lost succeeded: the read was sent again")
	}
	if proxy.Lost() != 1 {
		t.Fatalf("the proxy lost %d replies, want 1", proxy.Lost())
	}
	e3 := add(0)
	res, err := via.ReadRound(ctx, rdb, streams.Round{Consumer: "w1", Own: []int{0, 1}, Count: 10, Block: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[int][]string{0: {e1, e2}, 1: {f1}}, map[int][]string{0: ids(res.Entries[0]), 1: ids(res.Entries[1])}); diff != "" {
		t.Fatalf("own pending entries after the lost reply (-want,+got):\n%s", diff)
	}
	res, err = via.ReadRound(ctx, rdb, streams.Round{Consumer: "w1", New: []int{0, 1}, Count: 10, Block: 50 * time.Millisecond,
		Acks: map[int][]string{0: {e1, e2}, 1: {f1}}})
	if err != nil || cmp.Diff([]string{e3}, ids(res.Entries[0])) != "" || len(res.Entries[1]) != 0 {
		t.Fatalf("the next new entries: %v %v", res.Entries, err)
	}
}

// A round of a partition whose stream was deleted makes its group again
// and delivers nothing.
func TestReadRoundRemakesAMissingGroup(t *testing.T) {
	rdb := testredis.Start(t, nil).Client()
	c, _ := roundOn(t, rdb, 1)
	ctx := context.Background()
	if err := rdb.Del(ctx, c.Keys.Inbound(0)).Err(); err != nil {
		t.Fatal(err)
	}
	_, err := c.ReadRound(ctx, rdb, streams.Round{Consumer: "w1", New: []int{0}, Count: 10, Block: 50 * time.Millisecond})
	var re redis.Error
	if !errors.As(err, &re) {
		t.Fatalf("round on a deleted stream: %v, want NOGROUP", err)
	}
	if _, err := c.ReadRound(ctx, rdb, streams.Round{Consumer: "w1", New: []int{0}, Count: 10, Block: 50 * time.Millisecond}); err != nil {
		t.Fatalf("the group was not made again: %v", err)
	}
}
