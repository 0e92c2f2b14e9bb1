package connector

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/roomstream/roomstream/e2e/sioclient"
	"github.com/roomstream/roomstream/infra/testredis"
	"github.com/roomstream/roomstream/schemas"
)

// twoConnectors runs two connectors (and a worker) on one redis-server,
// both configured by tweak.
func twoConnectors(t *testing.T, tweak func(*Config)) (*harness, *harness) {
	t.Helper()
	rs := testredis.Start(t, nil)
	return startOn(t, rs, tweak), startWith(t, harnessOptions{redis: rs, tweak: tweak})
}

// TestConcurrentConnectsOfOneUser: many connects of one user at the same
// moment, spread over two connectors, get exactly MAX_CONNS_PER_USER
// sockets; the others are refused with too_many_connections.
func TestConcurrentConnectsOfOneUser(t *testing.T) {
	const limit, tries = 3, 24
	a, b := twoConnectors(t, func(c *Config) { c.MaxConnsPerUser = limit })
	tok := token(t, "alice", "Alice", time.Hour)
	var (
		mu               sync.Mutex
		connected, other int
		refused          []string
		wg               sync.WaitGroup
	)
	start := make(chan struct{})
	for i := range tries {
		h := a
		if i%2 == 1 {
			h = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c, err := sioclient.Dial(context.Background(), h.base, &sioclient.Options{Token: tok})
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				connected++
				t.Cleanup(func() { _ = c.Close() })
				return
			}
			if ce, ok := sioclient.IsConnectError(err); ok && strings.Contains(string(ce.Data), string(schemas.CodeTooManyConnections)) {
				refused = append(refused, string(ce.Data))
				return
			}
			other++
			t.Errorf("dial: %v", err)
		}()
	}
	close(start)
	wg.Wait()
	if connected != limit || len(refused) != tries-limit {
		t.Errorf("%d simultaneous connects of one user over two connectors: %d connected, %d refused, %d failed otherwise; want %d connected (MAX_CONNS_PER_USER)",
			tries, connected, len(refused), other, limit)
	}
	if n := a.redis.Client().SCard(a.ctx, a.c.Keys.UserSockets("alice")).Val(); n != limit {
		t.Errorf("user:{alice}:sockets holds %d sockets, want %d", n, limit)
	}
}

// TestConcurrentJoinsOfOneUser: joins of distinct rooms by one user's
// sockets at the same moment, on two connectors, get exactly
// MAX_ROOMS_PER_USER rooms; the others are refused with too_many_rooms.
// A refused join gives its place back: once the user leaves a room,
// another fits.
func TestConcurrentJoinsOfOneUser(t *testing.T) {
	const limit = 3
	a, b := twoConnectors(t, func(c *Config) { c.MaxRoomsPerUser = limit })
	var socks []*sioclient.Client
	for i := range 4 {
		h := a
		if i%2 == 1 {
			h = b
		}
		socks = append(socks, dial(t, h, token(t, "alice", "Alice", time.Hour)))
	}
	var (
		mu      sync.Mutex
		joined  []string
		refused int
		wg      sync.WaitGroup
	)
	start := make(chan struct{})
	for i, c := range socks {
		for j := range 3 {
			room := fmt.Sprintf("r%d-%d", i, j)
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				got := ack(t, c, schemas.EventJoinRoom, map[string]string{"roomId": room})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case got.OK:
					joined = append(joined, room)
				case got.Error.Code == schemas.CodeTooManyRooms:
					refused++
				default:
					t.Errorf("join %s: %+v", room, got.Error)
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	if len(joined) != limit || refused != 12-limit {
		t.Fatalf("12 simultaneous joins of one user's 4 sockets on two connectors: joined %v, %d refused; want %d rooms (MAX_ROOMS_PER_USER)",
			joined, refused, limit)
	}
	var leaver *sioclient.Client
	for i, c := range socks {
		if strings.HasPrefix(joined[0], fmt.Sprintf("r%d-", i)) {
			leaver = c
		}
	}
	if got := ack(t, leaver, schemas.EventLeaveRoom, map[string]string{"roomId": joined[0]}); !got.OK {
		t.Fatalf("leave %s: %+v", joined[0], got.Error)
	}
	if got := ack(t, socks[0], schemas.EventJoinRoom, map[string]string{"roomId": "after"}); !got.OK {
		t.Errorf("a room once the user left one: %+v", got.Error)
	}
}

// TestRoomCreateRate: one user's joins may create ROOM_CREATE_RATE rooms
// per minute; past it, a join of a room that does not exist is refused
// with too_many_new_rooms, while rooms that exist can still be joined and
// other users can still create theirs.
func TestRoomCreateRate(t *testing.T) {
	e := start(t, func(c *Config) { c.RoomCreateRate = 2 })
	alice := dial(t, e, token(t, "alice", "Alice", time.Hour))
	bob := dial(t, e, token(t, "bob", "Bob", time.Hour))
	join := func(c *sioclient.Client, room string) schemas.Ack {
		t.Helper()
		return ack(t, c, schemas.EventJoinRoom, map[string]string{"roomId": room})
	}
	for _, r := range []string{"a1", "a2"} {
		if got := join(alice, r); !got.OK {
			t.Fatalf("alice creates %s: %+v", r, got.Error)
		}
	}
	if got := join(alice, "a3"); got.OK || got.Error.Code != schemas.CodeTooManyNewRooms || !strings.Contains(got.Error.Message, "2 rooms per minute") {
		t.Errorf("alice's third new room in a minute (ROOM_CREATE_RATE=2): %+v", got)
	}
	if got := join(bob, "b1"); !got.OK {
		t.Fatalf("bob creates b1: %+v", got.Error)
	}
	if got := join(alice, "b1"); !got.OK {
		t.Errorf("alice joins a room that exists: %+v", got.Error)
	}
	if n, _ := e.c.RoomExists(e.ctx, "a3"); n {
		t.Error("the refused join created its room")
	}
}
