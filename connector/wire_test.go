package connector

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/connector/auth"
	"github.com/roomstream/roomstream/streams"
)

func TestAppendFrame(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		f := appendFrame(nil, bytes.Repeat([]byte("x"), n))
		if f[0] != 0x81 {
			t.Fatalf("%d: first byte %#x", n, f[0])
		}
		var got, head int
		switch l := int(f[1]); {
		case l < 126:
			got, head = l, 2
		case l == 126:
			got, head = int(f[2])<<8|int(f[3]), 4
		default:
			for _, b := range f[2:10] {
				got = got<<8 | int(b)
			}
			head = 10
		}
		if got != n || len(f) != head+n {
			t.Errorf("payload %d: header says %d, frame %d bytes", n, got, len(f))
		}
	}
}

// TestClientThatStopsReading: the outbound reader writes to sockets
// without blocking, so a client that stops reading holds up nobody: its
// room mate gets every event at once, and it is dropped when its queue is
// full (it can recover its missed events).
func TestClientThatStopsReading(t *testing.T) {
	l := startConnector(t, func(c *Config) { c.SendQueue = 32 })
	s := l.srv
	reader, readerSID := l.dialWS(t, "reader")
	_, stuckSID := l.dialWS(t, "stuck") // never reads again
	s.members.add("r", readerSID)
	s.members.add("r", stuckSID)
	const events = 2000
	var got atomic.Int64
	go func() {
		for {
			_, f, err := reader.Read(context.Background())
			if err != nil {
				return
			}
			if bytes.HasPrefix(f, []byte(`42["big"`)) {
				got.Add(1)
			}
		}
	}()
	body := []byte(`{"roomId":"r","pad":"` + strings.Repeat("x", 16<<10) + `"}`)
	o := &streams.Outbound{Partition: 1, Room: "r", Messages: []streams.Message{{Event: "big", Room: "r", Body: body}}}
	values := asRead(o)
	d, b := newDedup(), newBatch()
	base := time.Now().UnixMilli()
	var slowest time.Duration
	deadline := time.Now().Add(30 * time.Second)
	for i := range events {
		id := strconv.FormatInt(base, 10) + "-" + strconv.Itoa(i)
		values["src"] = id
		start := time.Now()
		s.dispatch([]redis.XMessage{{ID: id, Values: values}}, d, b)
		slowest = max(slowest, time.Since(start))
		// Paced by the reading client (its queue holds 32 frames).
		for got.Load() < int64(i)-16 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Microsecond)
		}
	}
	if slowest > 500*time.Millisecond {
		t.Errorf("one dispatch took %s: a client that does not read held up the reader", slowest)
	}
	for got.Load() < events && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := got.Load(); n != events {
		t.Errorf("the reading client got %d of %d events", n, events)
	}
	for testutil.ToFloat64(s.m.slowDropped) < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := testutil.ToFloat64(s.m.slowDropped); n != 1 {
		t.Errorf("slow sockets dropped: %v, want 1 (the client that stopped reading)", n)
	}
}

// TestTryFramesNeverBlocks: against a peer that does not read, the
// non-blocking write takes what the kernel accepts and returns; it never
// waits for the peer.
func TestTryFramesNeverBlocks(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); peer <- c }()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	defer (<-peer).Close() // never read
	w := newWireWriter(conn)
	frame := bytes.Repeat([]byte("x"), 64<<10)
	finished := make(chan int, 1)
	go func() {
		n := 0
		for ; n < 4096; n++ { // far more than any socket buffer
			left, err := w.tryFrames(frame)
			if err != nil || left > 0 {
				break
			}
		}
		// The socket is full now: dropping what was left, the next try
		// meets a kernel that takes nothing.
		w.discard()
		if left, err := w.tryFrames(frame); left == 0 || err != nil {
			n = -1
		}
		finished <- n
	}()
	select {
	case n := <-finished:
		if n == 4096 {
			t.Fatal("the kernel took 256 MiB for a peer that does not read")
		}
		if n < 0 {
			t.Fatal("a try on a full socket reported the frame written, or an error")
		}
		if !w.pending() {
			t.Error("the bytes the kernel did not take are not kept for the writer")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tryFrames blocked on a peer that does not read")
	}
}

// stuckWriter has a connector deliver frames of 16 KiB to a client that
// never reads, and returns the cause its socket was closed with and when.
func stuckWriter(t *testing.T, tweak func(*Config)) (closeCause, time.Duration) {
	t.Helper()
	l := startConnector(t, tweak)
	s := l.srv
	_, sid := l.dialWS(t, "stuck") // never reads again
	s.members.add("r", sid)
	so := s.socket(sid)
	body := []byte(`{"roomId":"r","pad":"` + strings.Repeat("x", 16<<10) + `"}`)
	o := &streams.Outbound{Partition: 1, Room: "r", Messages: []streams.Message{{Event: "big", Room: "r", Body: body}}}
	values := asRead(o)
	d, b := newDedup(), newBatch()
	base := time.Now().UnixMilli()
	start := time.Now()
	for i := 0; time.Since(start) < 20*time.Second; i++ {
		id := strconv.FormatInt(base, 10) + "-" + strconv.Itoa(i)
		values["src"] = id
		s.dispatch([]redis.XMessage{{ID: id, Values: values}}, d, b)
		so.qmu.Lock()
		failed := so.closeWanted
		so.qmu.Unlock()
		if failed {
			select {
			case <-so.writerDone: // and the connection is closed at once
			case <-time.After(2 * time.Second):
				t.Fatal("a failed socket was not closed within 2 s")
			}
			return so.cause, time.Since(start)
		}
		if i > 2000 {
			time.Sleep(time.Millisecond)
		}
	}
	t.Fatal("a client that never reads was not disconnected in 20 s")
	return 0, 0
}

// TestWriteDeadline: with a send queue too long to fill, a client that
// stops reading is disconnected by the write deadline.
func TestWriteDeadline(t *testing.T) {
	cause, took := stuckWriter(t, func(c *Config) {
		c.SendQueue, c.SendQueueBytes, c.WriteTimeout = 1<<30, 1<<30, 500*time.Millisecond
	})
	if cause != causeTransport {
		t.Errorf("closed as %s, want transport (the write deadline)", causeNames[cause])
	}
	t.Logf("closed %s after the first frame", took)
}

// TestSendQueueBytes: a send queue of few but large frames is bounded by
// its bytes.
func TestSendQueueBytes(t *testing.T) {
	cause, _ := stuckWriter(t, func(c *Config) {
		c.SendQueue, c.SendQueueBytes, c.WriteTimeout = 1<<30, 256<<10, time.Minute
	})
	if cause != causeSlow {
		t.Errorf("closed as %s, want slow (send queue bytes)", causeNames[cause])
	}
}

// TestRecoveryRightAfterDrop: a client that reconnects at once after its
// connection broke, while the connector is still recording the socket as
// dropped, gets its socket back (it used to find it "expired").
func TestRecoveryRightAfterDrop(t *testing.T) {
	l := startConnector(t, nil)
	ctx := context.Background()
	tok, _ := auth.Sign(l.cfg.JWTSecret, "quick", "quick", time.Hour)
	connect := func(auth string) (*websocket.Conn, string) {
		c, _, err := websocket.Dial(ctx, l.wsURL(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.CloseNow() })
		if _, _, err := c.Read(ctx); err != nil { // open packet
			t.Fatal(err)
		}
		if err := c.Write(ctx, websocket.MessageText, []byte(`40`+auth)); err != nil {
			t.Fatal(err)
		}
		for {
			_, f, err := c.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.HasPrefix(f, []byte(`40{`)) {
				return c, string(f[2:])
			}
		}
	}
	var reply struct{ SID, PID string }
	c, first := connect(`{"token":"` + tok + `"}`)
	if err := json.Unmarshal([]byte(first), &reply); err != nil || reply.PID == "" {
		t.Fatalf("CONNECT reply %s", first)
	}
	for i := range 20 {
		_ = c.CloseNow() // dropped, no goodbye
		var got struct{ SID, PID string }
		c2, again := connect(`{"token":"` + tok + `","pid":"` + reply.PID + `","offset":"0-0"}`)
		if err := json.Unmarshal([]byte(again), &got); err != nil || got.SID != reply.SID || got.PID != reply.PID {
			t.Fatalf("reconnect %d at once after a drop: %s, want socket %s recovered", i+1, again, reply.SID)
		}
		c = c2
	}
}

// TestKickRightAfterDrop: an operator's disconnect that arrives while a
// just-dropped socket is being recorded as held still closes it (it used
// to stay held, in its rooms, for the recovery window).
func TestKickRightAfterDrop(t *testing.T) {
	l := startConnector(t, nil)
	s := l.srv
	rdb := s.c.Redis()
	for i := range 10 {
		c, sid := l.dialWS(t, "kicked")
		_ = c.CloseNow() // dropped, no goodbye
		time.Sleep(time.Duration(i) * time.Millisecond)
		s.kick(sid, "account suspended")
		deadline := time.Now().Add(5 * time.Second)
		for {
			n, err := rdb.Exists(context.Background(), s.c.Keys.Socket(sid)).Result()
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break // closed: its keys are gone
			}
			if time.Now().After(deadline) {
				t.Fatalf("kick %d, %d ms after the drop: the socket is still there 5 s later", i+1, i)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
