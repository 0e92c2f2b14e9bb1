package streams

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/infra/testredis"
)

// TestFeedAppendOnRedisCluster: the feed's script is loaded on every
// master, and one pipeline appends to partitions whose feeds are on
// different masters (a partition's feed and its rooms' markers share a
// slot); an entry appended again is skipped.
func TestFeedAppendOnRedisCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	rdb := testredis.StartCluster(t).Client()
	ctx := context.Background()
	c := New(rdb, Config{Partitions: 8, KeyPrefix: "f:"})
	if err := c.LoadFeedScript(ctx); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		cmds := map[int]*redis.Cmd{}
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for part := range 8 {
				entries := []FeedEntry{
					{EntryID: "10-0", RoomID: fmt.Sprint("a", part), At: "t", Events: []FeedItem{{Type: "user-joined", Data: []byte("{}")}}},
					{EntryID: "11-0", RoomID: fmt.Sprint("b", part), At: "t", Events: []FeedItem{{Type: "user-left", Data: []byte("{}")}, {Type: "x", Data: []byte("{}")}}},
				}
				cmds[part] = c.FeedAppend(ctx, p, part, entries, "0-0", 1000, time.Hour)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for part, cmd := range cmds {
			want := int64(3)
			if round == 1 {
				want = 0
			}
			if n, err := cmd.Int64(); err != nil || n != want {
				t.Errorf("round %d, partition %d: appended %d (%v), want %d", round, part, n, err, want)
			}
		}
	}
	for part := range 8 {
		if n := rdb.XLen(ctx, c.Keys.Feed(part)).Val(); n != 3 {
			t.Errorf("partition %d: %d feed entries, want 3", part, n)
		}
	}
}
