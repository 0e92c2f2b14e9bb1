package connector

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/roomstream/roomstream/schemas"
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
