package connector

import (
	"io"
	"log/slog"
	"testing"

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
