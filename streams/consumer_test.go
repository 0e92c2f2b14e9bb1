package streams_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/infra/testredis"
	"github.com/roomstream/roomstream/streams"
)

// newReader returns a reader of partition 0 as consumer w1, its group
// created, on a private redis-server.
func newReader(t *testing.T) (*redis.Client, *streams.Client, *streams.Reader) {
	t.Helper()
	rdb := testredis.Start(t, nil).Client()
	c := streams.New(rdb, streams.Config{Partitions: 1, KeyPrefix: "t:"})
	r := c.Reader(0, "w1")
	if err := r.EnsureGroup(context.Background()); err != nil {
		t.Fatal(err)
	}
	return rdb, c, r
}

// A reply of XREADGROUP lost after Redis recorded the delivery (Redis
// killed and restarted from its AOF, connection cut) must not make the
// reader skip those entries: ReadNew returns them first, in order.
func TestReadNewReturnsEntriesWhoseReplyWasLost(t *testing.T) {
	rdb, c, r := newReader(t)
	ctx := context.Background()
	stream := c.Keys.Inbound(0)
	add := func(v string) string {
		t.Helper()
		id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"v", v}}).Result()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	// Delivered to w1, but the reply never reached it.
	lose := func(n int64) {
		t.Helper()
		if err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: streams.Group, Consumer: "w1", Streams: []string{stream, ">"}, Count: n, Block: -1}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(msgs []redis.XMessage) []string {
		var out []string
		for _, m := range msgs {
			out = append(out, m.ID)
		}
		return out
	}

	e1, e2, e3 := add("1"), add("2"), add("3")
	lose(2)
	e4 := add("4")
	got, err := r.ReadNew(ctx, 10, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{e1, e2, e3, e4}, ids(got)); diff != "" {
		t.Fatalf("after a lost reply (-want,+got):\n%s", diff)
	}
	if err := r.Ack(ctx, ids(got)...); err != nil {
		t.Fatal(err)
	}
	// Nothing new, nothing pending: the block elapses.
	if got, err := r.ReadNew(ctx, 10, 50*time.Millisecond); err != nil || len(got) != 0 {
		t.Fatalf("idle read: %v %v", ids(got), err)
	}
	// A lost reply and then no traffic: found when the block elapses.
	e5 := add("5")
	lose(1)
	got, err = r.ReadNew(ctx, 10, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{e5}, ids(got)); diff != "" {
		t.Fatalf("lost reply on an idle stream (-want,+got):\n%s", diff)
	}
	// Without anything lost, new entries come as they are.
	_ = r.Ack(ctx, e5)
	e6 := add("6")
	got, err = r.ReadNew(ctx, 10, 50*time.Millisecond)
	if err != nil || cmp.Diff([]string{e6}, ids(got)) != "" {
		t.Fatalf("plain read: %v %v", ids(got), err)
	}
}

// ReadNewAck runs the caller's writes first in its round trip (a worker's
// last applied entries) and says whether they went through, apart from
// the read.
func TestReadNewAckWritesFirst(t *testing.T) {
	rdb, c, r := newReader(t)
	ctx := context.Background()
	id := rdb.XAdd(ctx, &redis.XAddArgs{Stream: c.Keys.Inbound(0), Values: []string{"v", "1"}}).Val()
	write := func(p redis.Pipeliner) func() error {
		set := p.Set(ctx, "t:written", "yes", 0)
		return set.Err
	}
	got, werr, err := r.ReadNewAck(ctx, nil, nil, write, 10, 50*time.Millisecond)
	if err != nil || werr != nil || len(got) != 1 || got[0].ID != id {
		t.Fatalf("read %v, write err %v, read err %v", got, werr, err)
	}
	if rdb.Get(ctx, "t:written").Val() != "yes" {
		t.Error("the write did not run")
	}
	// id stays pending on purpose (its writes ride this read): it is not
	// taken for a lost reply, and not returned again.
	id2 := rdb.XAdd(ctx, &redis.XAddArgs{Stream: c.Keys.Inbound(0), Values: []string{"v", "2"}}).Val()
	got, _, err = r.ReadNewAck(ctx, nil, []string{id}, write, 10, 50*time.Millisecond)
	if err != nil || len(got) != 1 || got[0].ID != id2 {
		t.Fatalf("read with a held entry: %v %v", got, err)
	}
	failing := func(p redis.Pipeliner) func() error {
		bad := p.HSet(ctx, "t:written", "f", "v") // wrong type: refused
		return bad.Err
	}
	if _, werr, err := r.ReadNewAck(ctx, []string{id, id2}, nil, failing, 10, 50*time.Millisecond); werr == nil || err != nil {
		t.Fatalf("a refused write: write err %v, read err %v", werr, err)
	}
}
