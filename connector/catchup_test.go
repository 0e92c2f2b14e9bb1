package connector

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/roomstream/roomstream/infra/testredis"
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
