package connector

import (
	"encoding/json"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/roomstream/roomstream/e2e/testkit"
	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
	"github.com/roomstream/roomstream/workers"
)

// TestTooManyRooms: a socket past ROOMSTREAM_MAX_ROOMS, and a user past
// ROOMSTREAM_MAX_ROOMS_PER_USER over two sockets, get `too_many_rooms`;
// leaving a room makes room for another.
func TestTooManyRooms(t *testing.T) {
	e := start(t, func(c *Config) { c.MaxRooms, c.MaxRoomsPerUser = 2, 3 })
	a := dial(t, e, token(t, "alice", "Alice", time.Hour))
	b := dial(t, e, token(t, "alice", "Alice", time.Hour))
	expect := func(got schemas.Ack, code schemas.Code, what string) {
		t.Helper()
		switch {
		case code == "" && !got.OK:
			t.Errorf("%s: refused %+v", what, got.Error)
		case code != "" && (got.OK || got.Error == nil || got.Error.Code != code):
			raw, _ := json.Marshal(got)
			t.Errorf("%s: %s, want %s", what, raw, code)
		}
	}
	room := func(i int) map[string]string { return map[string]string{"roomId": fmt.Sprintf("r%d", i)} }
	expect(ack(t, a, schemas.EventJoinRoom, room(1)), "", "socket a, room 1 of 2")
	expect(ack(t, a, schemas.EventJoinRoom, room(2)), "", "socket a, room 2 of 2")
	expect(ack(t, a, schemas.EventJoinRoom, room(3)), schemas.CodeTooManyRooms, "socket a, a 3rd room (MAX_ROOMS=2)")
	expect(ack(t, b, schemas.EventJoinRoom, room(3)), "", "socket b, the user's room 3 of 3")
	expect(ack(t, b, schemas.EventJoinRoom, room(4)), schemas.CodeTooManyRooms, "socket b, the user's 4th room (MAX_ROOMS_PER_USER=3)")
	expect(ack(t, a, schemas.EventLeaveRoom, room(1)), "", "socket a leaves room 1")
	expect(ack(t, b, schemas.EventJoinRoom, room(4)), "", "socket b, room 4 once the user left one")
}

// TestRefusedJoinStopsCounting: a join the workers refuse (room_full)
// does not count towards ROOMSTREAM_MAX_ROOMS once its refusal arrives,
// and the room leaves the socket's room set in Redis.
func TestRefusedJoinStopsCounting(t *testing.T) {
	e := startWith(t, harnessOptions{worker: true, tweak: func(c *Config) { c.MaxRooms = 2 },
		workerTweak: func(c *workers.Config) { c.RoomMaxMembers = 1 }})
	bob := dial(t, e, token(t, "bob", "Bob", time.Hour))
	if a := ack(t, bob, schemas.EventJoinRoom, map[string]string{"roomId": "full"}); !a.OK {
		t.Fatalf("bob joins: %+v", a.Error)
	}
	alice := dial(t, e, token(t, "alice", "Alice", time.Hour))
	for range 3 {
		if a := ack(t, alice, schemas.EventJoinRoom, map[string]string{"roomId": "full"}); a.OK || a.Error.Code != schemas.CodeRoomFull {
			t.Fatalf("alice joins a full room: %+v", a)
		}
	}
	for _, r := range []string{"r1", "r2"} {
		if a := ack(t, alice, schemas.EventJoinRoom, map[string]string{"roomId": r}); !a.OK {
			t.Fatalf("alice joins %s after a refused join (MAX_ROOMS=2): %+v", r, a.Error)
		}
	}
	if a := ack(t, alice, schemas.EventJoinRoom, map[string]string{"roomId": "r3"}); a.OK || a.Error.Code != schemas.CodeTooManyRooms {
		t.Errorf("a third room: %+v", a)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		rooms, err := e.c.SocketRooms(e.ctx, alice.SID)
		sort.Strings(rooms)
		if err == nil && fmt.Sprint(rooms) == "[r1 r2]" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("socket:{id}:rooms holds %v (%v), want [r1 r2]", rooms, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRemovedMemberStopsCounting: a socket an operator removes from a
// room (DELETE /rooms/{id}/members/{user}) no longer counts it towards
// ROOMSTREAM_MAX_ROOMS.
func TestRemovedMemberStopsCounting(t *testing.T) {
	e := start(t, func(c *Config) { c.MaxRooms = 2 })
	alice := dial(t, e, token(t, "alice", "Alice", time.Hour))
	for _, r := range []string{"r1", "r2"} {
		if a := ack(t, alice, schemas.EventJoinRoom, map[string]string{"roomId": r}); !a.OK {
			t.Fatalf("join %s: %+v", r, a.Error)
		}
	}
	if _, err := e.c.Append(e.ctx, &streams.Envelope{Type: schemas.CmdRemoveMember, RoomID: "r1", UserID: "alice",
		Reason: schemas.ReasonRemoved, Via: schemas.ViaAPI, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, alice, schemas.EventUserLeft, `"roomId":"r1"`, `"reason":"removed"`)
	if a := ack(t, alice, schemas.EventJoinRoom, map[string]string{"roomId": "r3"}); !a.OK {
		t.Errorf("a room in place of the one alice was removed from (MAX_ROOMS=2): %+v", a.Error)
	}
}

// TestSocketRoomsFollowOutcomes: the connector's count of a socket's
// rooms through the orders outcomes arrive in.
func TestSocketRoomsFollowOutcomes(t *testing.T) {
	var r socketRooms
	r.joining("a", "u")
	if r.drop("a", roomIn) || !r.has("a") {
		t.Error("a $leave of an earlier stay dropped a pending join")
	}
	if r.joined("a") || r.count() != 1 {
		t.Error("the join's $join: room unknown or not counted")
	}
	r.left("a")
	r.joining("a", "u") // left and joined again
	if r.drop("a", roomIn) || !r.has("a") {
		t.Error("the $leave of the leave dropped the new join")
	}
	if !r.drop("a", roomJoining) || r.has("a") || r.count() != 0 {
		t.Error("a refused join still counts")
	}
	if !r.joined("b") || !r.has("b") {
		t.Error("a $join of a room not counted is not reported unknown")
	}
	if !r.drop("b", roomIn) || r.count() != 0 {
		t.Error("a removal did not drop the room")
	}
	r.reset([]string{"x", "y"})
	if r.count() != 2 || r.drop("x", roomJoining) {
		t.Error("recovered rooms are not joined")
	}
}
