package api

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/roomstream/roomstream/infra/testredis"
	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
	"github.com/roomstream/roomstream/workers"
)

// TestOnRedisCluster: the listing pages through every master, and reads,
// publish and disconnect work across slots.
func TestOnRedisCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	ctx := context.Background()
	rdb := testredis.StartCluster(t).Client()
	c := streams.New(rdb, streams.Config{Partitions: 4, RecoveryWindow: time.Minute, KeyPrefix: "t:", InboundRetention: time.Hour, InboundMaxLen: 1000})
	a := workers.NewApplier(c, time.Second, time.Hour, nil)
	svc := NewService(c, nil)
	const rooms = 40
	for i := 0; i < rooms; i++ {
		room := "room-" + strconv.Itoa(i)
		env := &streams.Envelope{ID: strconv.Itoa(1000+i) + "-0", Type: schemas.EventJoinRoom, RoomID: room, UserID: "alice", UserName: "Alice",
			SocketID: "sA", ConnectorID: "c1", At: time.Now()}
		if _, err := a.Apply(ctx, 0, 1, env); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]int{}
	cursor, pages := "", 0
	for {
		page, err := svc.Rooms(ctx, cursor, 7)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, r := range page.Rooms {
			seen[r.RoomID]++
			if r.Members != 1 {
				t.Errorf("room %s: %d members", r.RoomID, r.Members)
			}
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
		if pages > 100 {
			t.Fatal("the listing does not end")
		}
	}
	if len(seen) != rooms {
		t.Errorf("listed %d rooms of %d over %d pages", len(seen), rooms, pages)
	}
	if r, err := svc.Room(ctx, "room-3"); err != nil || len(r.Members) != 1 {
		t.Errorf("room-3: %+v %v", r, err)
	}
	if _, err := svc.Publish(ctx, "room-3", PublishRequest{Event: "app:x", Data: json.RawMessage(`{}`)}, "k1"); err != nil {
		t.Errorf("publish: %v", err)
	}
	rdb.SAdd(ctx, c.Keys.UserSockets("alice"), "sA")
	rdb.HSet(ctx, c.Keys.Socket("sA"), "connector", "c1", "state", "live")
	rdb.Set(ctx, c.Keys.Connector("c1"), "alive", time.Minute)
	d, err := svc.Disconnect(ctx, "alice", DisconnectRequest{RevokeTokens: true})
	if err != nil || len(d.Sockets) != 1 {
		t.Errorf("disconnect: %+v %v", d, err)
	}
	if u, err := svc.User(ctx, "alice"); err != nil || len(u.Rooms) != rooms || u.TokensRevokedBefore == "" {
		t.Errorf("user: %+v %v", u, err)
	}
}
