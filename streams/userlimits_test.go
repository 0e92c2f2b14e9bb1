package streams_test

import (
	"context"
	"testing"
	"time"

	"github.com/roomstream/roomstream/streams"
)

// TestAdmitUserRoom: a user's joins count the rooms the user is in and
// those admitted joins hold until they expire or are given back; the
// same room twice takes one place; creation is counted per window, only
// for joins that create a room.
func TestAdmitUserRoom(t *testing.T) {
	ctx := context.Background()
	rdb, c := newClient(t)
	now := time.Now()
	admit := func(room string, at time.Time, creates bool) string {
		t.Helper()
		why, err := c.AdmitUserRoom(ctx, streams.RoomAdmission{User: "u", Room: room, Now: at, Hold: time.Minute,
			MaxRooms: 2, Creates: creates, MaxCreated: 3, Window: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		return why
	}
	rdb.SAdd(ctx, c.Keys.UserRooms("u"), "in")
	for _, tc := range []struct {
		room    string
		at      time.Time
		creates bool
		want    string
	}{
		{"a", now, true, ""},                          // in + a
		{"a", now, false, ""},                         // the same room again
		{"in", now, false, ""},                        // a room the user is in
		{"b", now, true, streams.RefusedTooManyRooms}, // in + a + b
		{"b", now.Add(2 * time.Minute), true, ""},     // a's hold is over: in + b
		{"c", now.Add(2 * time.Minute), true, streams.RefusedTooManyRooms},
	} {
		if got := admit(tc.room, tc.at, tc.creates); got != tc.want {
			t.Errorf("%s at +%s: %q, want %q", tc.room, tc.at.Sub(now), got, tc.want)
		}
	}
	if err := c.ReleaseUserRoom(ctx, "u", "b"); err != nil {
		t.Fatal(err)
	}
	if got := admit("c", now.Add(2*time.Minute), true); got != "" {
		t.Errorf("c once b's place was given back: %q", got)
	}
	// Three creations so far (a, b, c): the window's allowance is spent.
	rdb.Del(ctx, c.Keys.UserJoining("u"))
	if got := admit("d", now.Add(2*time.Minute), true); got != streams.RefusedTooManyNewRooms {
		t.Errorf("a fourth creation in the window: %q", got)
	}
	if got := admit("d", now.Add(2*time.Minute), false); got != "" {
		t.Errorf("joining a room that exists past the creation limit: %q", got)
	}
}

// TestAddUserSocket: the user's socket set grows to the limit and no
// further; a socket already in it stays admitted.
func TestAddUserSocket(t *testing.T) {
	ctx := context.Background()
	rdb, c := newClient(t)
	for i, tc := range []struct {
		sid   string
		added bool
		n     int64
	}{{"s1", true, 0}, {"s2", true, 1}, {"s3", false, 2}, {"s1", true, 2}} {
		added, n, err := c.AddUserSocket(ctx, "u", tc.sid, 2, time.Hour)
		if err != nil || added != tc.added || n != tc.n {
			t.Errorf("%d: %s: added %v, n %d (%v); want %v, %d", i, tc.sid, added, n, err, tc.added, tc.n)
		}
	}
	if ttl := rdb.PTTL(ctx, c.Keys.UserSockets("u")).Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("user socket set TTL %s", ttl)
	}
}
