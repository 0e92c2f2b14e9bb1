package connector

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/roomstream/roomstream/e2e/sioclient"
	"github.com/roomstream/roomstream/e2e/testkit"
	"github.com/roomstream/roomstream/infra/testredis"
	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// TestCatchUpFollowsMembership: room events name their room, so a
// recovery reads the old connector's stream by the socket's membership:
// events of a room it was in at its offset until it left or moved, of a
// room it joined from the join on, and what was sent to it alone (no
// acknowledgements); nothing of other rooms.
func TestCatchUpFollowsMembership(t *testing.T) {
	rs := testredis.Start(t, nil)
	rdb := rs.Client()
	c := streams.New(rdb, streams.Config{Partitions: 4, KeyPrefix: "t:", RecoveryWindow: time.Minute})
	s := New(Config{}, c, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	ctx := context.Background()
	const sid, other = "s1", "s2"
	src := 0
	add := func(room string, msgs ...streams.Message) string {
		src++
		o := &streams.Outbound{Partition: 1, Room: room, Source: "1000-" + string(rune('0'+src/10)) + string(rune('0'+src%10)), Messages: msgs}
		return rdb.XAdd(ctx, c.OutboundArgs("old", o, time.Now())).Val()
	}
	ev := func(room, name string) streams.Message {
		return streams.Message{Event: name, Room: room, Body: []byte(`{"roomId":"` + room + `"}`)}
	}
	op := func(kind, room string) streams.Message {
		return streams.Message{Event: kind, Room: room, To: []string{sid}}
	}

	offset := add("A", ev("A", "before-offset"))
	add("A", ev("A", "a1"))
	add("B", ev("B", "b-before-join"))
	add("B", op(streams.JoinEvent, "B"), ev("B", "b1"))
	add("C", ev("C", "c1"))
	add("C", op(streams.LeaveEvent, "C"), ev("C", "c-after-leave"))
	add("A", streams.Message{Event: "error", To: []string{sid}, Body: []byte(`{"code":"x"}`)},
		streams.Message{AckID: 7, To: []string{sid}, Body: []byte(`{"ok":true}`)},
		streams.Message{Event: "error", To: []string{other}, Body: []byte(`{"code":"y"}`)})
	add("D", ev("D", "d-never-joined"))
	add("A", op(streams.LeaveEvent, "A"), ev("A", "a-after-move"))

	frames, _, err := s.catchUp(ctx, "old", sid, streams.MustID(offset), "+", "9-9", []string{"A", "B"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range frames {
		name := string(f)[4:]
		got = append(got, name[:strings.IndexByte(name, '"')])
	}
	if diff := cmp.Diff([]string{"a1", "b1", "c1", "error"}, got); diff != "" {
		t.Errorf("resent (-want,+got):\n%s", diff)
	}
}

// TestRecoveryPastTheReadBound: a socket that missed more outbound
// entries than a recovery reads (RECOVERY_MAX_ENTRIES) is not recovered:
// the client gets a fresh session, as when the window has passed, and
// its rooms hear it left (recovery_expired). One that missed fewer is
// recovered.
func TestRecoveryPastTheReadBound(t *testing.T) {
	e := start(t, func(c *Config) { c.RecoveryMaxEntries = 100 })
	bob := dial(t, e, token(t, "bob", "Bob", time.Hour))
	if a := ack(t, bob, schemas.EventJoinRoom, map[string]string{"roomId": "r"}); !a.OK {
		t.Fatalf("bob joins: %+v", a.Error)
	}
	missed := func(n int) {
		t.Helper()
		for i := range n {
			o := &streams.Outbound{Partition: 1, Room: "r", Source: fmt.Sprintf("%d-%d", time.Now().UnixMilli(), i),
				Messages: []streams.Message{{Event: "app:tick", Room: "r", Body: []byte(`{}`)}}}
			if err := e.c.Redis().XAdd(e.ctx, e.c.OutboundArgs(e.srv.ID(), o, time.Now())).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	recoverAfter := func(user string, n int) *sioclient.Client {
		t.Helper()
		tok := token(t, user, user, time.Hour)
		c := dial(t, e, tok)
		if a := ack(t, c, schemas.EventJoinRoom, map[string]string{"roomId": "r"}); !a.OK {
			t.Fatalf("%s joins: %+v", user, a.Error)
		}
		sid, pid, offset := c.SID, c.PID, c.Offset()
		c.Drop()
		e.awaitHeld(t, sid)
		missed(n)
		r, err := sioclient.Dial(context.Background(), e.base, &sioclient.Options{Token: tok, PID: pid, Offset: offset})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		return r
	}
	if r := recoverAfter("carol", 50); !r.Recovered {
		t.Error("50 missed entries (bound 100): not recovered")
	}
	r := recoverAfter("alice", 150)
	if r.Recovered {
		t.Fatal("150 missed entries (bound 100): recovered")
	}
	testkit.WaitFor(t, bob, schemas.EventUserLeft, `"userId":"alice"`, `"reason":"recovery_expired"`)
	if n := metric(t, e, "roomstream_connector_recoveries_total", "result", "too_much_missed"); n != 1 {
		t.Errorf("recoveries too_much_missed: %v", n)
	}
	// The fresh session works.
	if a := ack(t, r, schemas.EventJoinRoom, map[string]string{"roomId": "r"}); !a.OK {
		t.Errorf("the fresh session joins: %+v", a.Error)
	}
}
