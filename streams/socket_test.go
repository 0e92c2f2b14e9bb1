package streams_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/infra/testredis"
	"github.com/roomstream/roomstream/streams"
)

// newClient returns a client of one partition on a private
// redis-server, and that server's client.
func newClient(t *testing.T) (*redis.Client, *streams.Client) {
	t.Helper()
	rdb := testredis.Start(t, nil).Client()
	return rdb, streams.New(rdb, streams.Config{Partitions: 1, KeyPrefix: "t:"})
}

// TestForgetSocketRoom: a connector forgets a socket's room only while
// it owns the socket.
func TestForgetSocketRoom(t *testing.T) {
	ctx := context.Background()
	rdb, c := newClient(t)
	rdb.HSet(ctx, c.Keys.Socket("s1"), "connector", "c2")
	rdb.SAdd(ctx, c.Keys.SocketRooms("s1"), "r1", "r2")
	if err := c.ForgetSocketRoom(ctx, "s1", "r1", "c1"); err != nil {
		t.Fatal(err)
	}
	if err := c.ForgetSocketRoom(ctx, "s1", "r2", "c2"); err != nil {
		t.Fatal(err)
	}
	if rooms := rdb.SMembers(ctx, c.Keys.SocketRooms("s1")).Val(); len(rooms) != 1 || rooms[0] != "r1" {
		t.Errorf("rooms %v, want [r1]: c1 no longer owns the socket", rooms)
	}
}
