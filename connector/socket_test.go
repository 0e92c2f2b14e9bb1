package connector

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/coder/websocket"

	"github.com/roomstream/roomstream/streams"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestSlowSocketIsDropped: a socket whose send queue is full is closed
// (and counted) instead of holding up the delivery to everyone else.
func TestSlowSocketIsDropped(t *testing.T) {
	s := &Server{cfg: Config{SendQueue: 8, RateLimit: 1, RateBurst: 1}, m: newMetrics(prometheus.NewRegistry()),
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	zero := "0-0"
	s.lastSeen.Store(&zero)
	so := newSocket(s, nil)
	so.writing = true // a writer is busy (stuck on a slow client): nothing drains the queue
	for i := 0; i < 8; i++ {
		so.enqueueRaw([]byte("42[\"x\"]"))
	}
	if so.closeWanted {
		t.Fatal("closed before its queue was full")
	}
	so.enqueueRaw([]byte("42[\"x\"]"))
	if !so.closeWanted {
		t.Fatal("a socket with a full queue was not dropped")
	}
	if so.cause != causeSlow {
		t.Errorf("cause %v, want slow", causeNames[so.cause])
	}
	if n := testutil.ToFloat64(s.m.slowDropped); n != 1 {
		t.Errorf("slow sockets dropped metric = %v", n)
	}
	// Further packets neither block nor count it twice.
	so.enqueueRaw([]byte("42[\"x\"]"))
	if n := testutil.ToFloat64(s.m.slowDropped); n != 1 {
		t.Errorf("slow sockets dropped metric = %v after more packets, want 1", n)
	}
}

// TestDedupPerRoom: the rooms of one partition interleave in a worker's
// batch, so their outbound entries reach a connector out of partition
// order; each is delivered. An entry re-sent for a room (a redelivery
// after a worker crash) is dropped.
func TestDedupPerRoom(t *testing.T) {
	d := newDedup()
	entry := func(room, src string) *streams.Outbound {
		return &streams.Outbound{Partition: 3, Room: room, Source: src}
	}
	for _, c := range []struct {
		o    *streams.Outbound
		want bool
	}{
		{entry("r1", "100-0"), true},
		{entry("r2", "102-0"), true},
		{entry("r1", "101-0"), true}, // after r2's, same partition: another room
		{entry("r1", "101-0"), false},
		{entry("r2", "102-0"), false},
		{entry("r1", "100-0"), false},
		{entry("r2", "103-0"), true},
	} {
		if got := d.fresh(c.o); got != c.want {
			t.Errorf("fresh(%s %s) = %v, want %v", c.o.Room, c.o.Source, got, c.want)
		}
	}
}

// TestPanicClosesOneSocket: a panic while handling a packet closes that
// socket and is counted; the goroutine that read it goes on.
func TestPanicClosesOneSocket(t *testing.T) {
	l := startConnector(t, nil)
	s := l.srv
	ws, sid := l.dialWS(t, "victim")
	so := s.socket(sid)
	// A server without a verifier panics on the next token it checks.
	v := s.verifier
	s.verifier = nil
	defer func() { s.verifier = v }()
	if so.handleMessage([]byte(`2["authenticate",{"token":"x"}]`)) {
		t.Fatal("a packet whose handling panicked did not end the socket")
	}
	if n := testutil.ToFloat64(s.m.panics); n != 1 {
		t.Errorf("panics metric %v, want 1", n)
	}
	var err error
	for err == nil {
		_, _, err = ws.Read(context.Background())
	}
	if websocket.CloseStatus(err) != websocket.StatusInternalError {
		t.Errorf("the client saw %v, want close 1011", err)
	}
	s.verifier = v
	// The process goes on: another client connects and authenticates.
	l.dialWS(t, "other")
}
