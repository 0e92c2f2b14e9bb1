package connector

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/streams"
)

// TestOutboundDuplicatesDropped: a worker that crashed after writing a
// room's outbound entry, before acknowledging its inbound entry, has the
// entry redelivered and written again with the same source. The
// connector reading its stream delivers it to the socket once: the second
// copy (same room, source not newer) is dropped and counted, and the
// room's next entry still goes through.
func TestOutboundDuplicatesDropped(t *testing.T) {
	l := startConnector(t, nil)
	s := l.srv
	ws, sid := l.dialWS(t, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rdb := s.c.Redis()
	add := func(src, event string) {
		t.Helper()
		o := &streams.Outbound{Partition: 1, Room: "r1", Source: src, Messages: []streams.Message{
			{Event: event, To: []string{sid}, Body: []byte(`{"roomId":"r1"}`)},
		}}
		if err := rdb.XAdd(ctx, s.c.OutboundArgs(s.id, o, time.Now())).Err(); err != nil {
			t.Fatal(err)
		}
	}
	add("1000-1", "first")
	add("1000-1", "first") // the redelivery's copy
	add("1000-0", "first") // older than what the room already sent
	add("1000-2", "second")
	got := map[string]int{}
	for got["second"] == 0 {
		_, f, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("reading the socket: %v (got %v)", err, got)
		}
		for _, name := range []string{"first", "second"} {
			if bytes.HasPrefix(f, []byte(`42["`+name+`"`)) {
				got[name]++
			}
		}
	}
	if got["first"] != 1 {
		t.Errorf("the entry written three times reached the socket %d times, want once", got["first"])
	}
	if n := testutil.ToFloat64(s.m.duplicates); n != 2 {
		t.Errorf("duplicates metric %v, want 2", n)
	}
}

// TestDeliveredLatency: an outbound entry carrying its event's accept
// time is timed once per socket a frame of it is handed to; an entry
// without one (the previous release's workers) is not timed.
func TestDeliveredLatency(t *testing.T) {
	l := startConnector(t, nil)
	s := l.srv
	wsA, sidA := l.dialWS(t, "alice")
	wsB, sidB := l.dialWS(t, "bob")
	ctx := waitCtx(t)
	add := func(src string, accepted time.Time) {
		t.Helper()
		o := &streams.Outbound{Partition: 1, Room: "r1", Source: src, Accepted: accepted, Messages: []streams.Message{
			{Event: "timed", To: []string{sidA, sidB}, Body: []byte(`{"roomId":"r1"}`)},
		}}
		if err := s.c.Redis().XAdd(ctx, s.c.OutboundArgs(s.id, o, time.Now())).Err(); err != nil {
			t.Fatal(err)
		}
	}
	add("1000-1", time.Now().Add(-50*time.Millisecond))
	add("1000-2", time.Time{})
	for _, ws := range []*websocket.Conn{wsA, wsB} {
		for n := 0; n < 2; {
			_, f, err := ws.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.HasPrefix(f, []byte(`42["timed"`)) {
				n++
			}
		}
	}
	count, sum := histogram(t, l, "roomstream_event_latency_seconds", "hop", "delivered")
	if count != 2 || sum < 2*0.05 || sum > 2*5 {
		t.Errorf("delivered hop: %d observations summing to %.3f s; want 2 of at least 50 ms", count, sum)
	}
}

// TestDispatchOrderPerSocket: one read of the outbound stream is written
// to each socket at once, in stream order. Each socket gets exactly its
// frames (room events of its rooms with their entry ids as offsets,
// events and acknowledgements addressed to it), once, in the order of
// the entries and of the messages in them; an entry repeated in the same
// read is dropped; a recovering socket buffers its share, in order.
func TestDispatchOrderPerSocket(t *testing.T) {
	l := startConnector(t, nil)
	s := l.srv
	a, aSID := l.dialWS(t, "a")
	b, bSID := l.dialWS(t, "b")
	c, cSID := l.dialWS(t, "c")
	_, rSID := l.dialWS(t, "recovering")
	for _, sid := range []string{aSID, bSID, rSID} {
		s.members.add("r", sid)
	}
	entry := func(id string, msgs ...streams.Message) redis.XMessage {
		return redis.XMessage{ID: id, Values: asRead(&streams.Outbound{Partition: 1, Room: "r", Source: id, Messages: msgs})}
	}
	ev := func(n int) streams.Message {
		return streams.Message{Event: "ev", Room: "r", Body: []byte(`{"n":` + strconv.Itoa(n) + `}`)}
	}
	ack := func(id int64, sid string) streams.Message {
		return streams.Message{AckID: id, Body: []byte(`{"ok":true}`), To: []string{sid}}
	}
	read := []redis.XMessage{
		entry("1000-1", ack(7, aSID), ev(1)),
		entry("1000-2", streams.Message{Event: "direct", To: []string{cSID}, Body: []byte(`{}`)}),
		entry("1000-3", ev(2)),
		entry("1000-3", ev(2)), // a redelivery's copy, in the same read
		entry("1000-4", ev(3), ack(8, bSID)),
	}
	rso := s.socket(rSID)
	rso.mu.Lock()
	rso.recovering = true
	rso.mu.Unlock()
	s.dispatch(read, newDedup(), newBatch())
	s.dispatch([]redis.XMessage{entry("1000-5", streams.Message{Event: "end", To: []string{aSID, bSID, cSID}, Body: []byte(`{}`)})}, newDedup(), newBatch())

	want := map[*websocket.Conn][]string{
		a: {`437[{"ok":true}]`, `42["ev",{"n":1},"1000-1"]`, `42["ev",{"n":2},"1000-3"]`, `42["ev",{"n":3},"1000-4"]`, `42["end",{},"1000-5"]`},
		b: {`42["ev",{"n":1},"1000-1"]`, `42["ev",{"n":2},"1000-3"]`, `42["ev",{"n":3},"1000-4"]`, `438[{"ok":true}]`, `42["end",{},"1000-5"]`},
		c: {`42["direct",{},"1000-2"]`, `42["end",{},"1000-5"]`},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for conn, frames := range want {
		var got []string
		for len(got) == 0 || got[len(got)-1] != frames[len(frames)-1] {
			_, f, err := conn.Read(ctx)
			if err != nil {
				t.Fatalf("reading: %v (got %q)", err, got)
			}
			if string(f) != "2" && !bytes.HasPrefix(f, []byte(`42["authentication_successful"`)) {
				got = append(got, string(f))
			}
		}
		if diff := cmp.Diff(frames, got); diff != "" {
			t.Errorf("frames (-want +got):\n%s", diff)
		}
	}
	rso.mu.Lock()
	var buffered []string
	for _, f := range rso.buffered {
		buffered = append(buffered, string(f))
	}
	off := rso.bufferedOffset
	rso.mu.Unlock()
	wantBuf := []string{`42["ev",{"n":1},"1000-1"]`, `42["ev",{"n":2},"1000-3"]`, `42["ev",{"n":3},"1000-4"]`}
	if diff := cmp.Diff(wantBuf, buffered); diff != "" {
		t.Errorf("buffered while recovering (-want +got):\n%s", diff)
	}
	if off == nil || *off != "1000-4" {
		t.Errorf("buffered offset %v, want 1000-4", off)
	}
}
