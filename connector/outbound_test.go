package connector

import (
	"bytes"
	"context"
	"testing"
	"time"

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
