package connector

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

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
