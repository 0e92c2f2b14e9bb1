package connector

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/kelseyhightower/envconfig"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/infra/testredis"
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
	rs := testredis.Start(t, nil)
	var cfg Config
	if err := envconfig.Process("ROOMSTREAM_TEST_DEFAULTS_ONLY", &cfg); err != nil {
		t.Fatal(err)
	}
	cfg.RedisURL, cfg.JWTSecret, cfg.Partitions, cfg.SendQueue = rs.URL(), "test-secret-0123456789", 4, 32
	ctx, cancel := context.WithCancel(context.Background())
	rdb, err := cfg.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s := New(cfg, streams.New(rdb, cfg.Config), slog.New(slog.NewTextHandler(io.Discard, nil)), &Options{Registerer: reg})
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() { cancel(); <-done; hs.Close(); _ = rdb.Close() })
	for !s.Ready() {
		time.Sleep(5 * time.Millisecond)
	}
	dial := func(user string) (*websocket.Conn, string) {
		tok, _ := Sign(cfg.JWTSecret, user, user, time.Hour)
		c, _, err := websocket.Dial(ctx, "ws"+hs.URL[4:]+"/socket.io/?EIO=4&transport=websocket", nil)
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadLimit(1 << 20)
		t.Cleanup(func() { _ = c.CloseNow() })
		if _, _, err := c.Read(ctx); err != nil { // open packet
			t.Fatal(err)
		}
		if err := c.Write(ctx, websocket.MessageText, []byte(`40{"token":"`+tok+`"}`)); err != nil {
			t.Fatal(err)
		}
		for {
			_, f, err := c.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if v, ok := bytes.CutPrefix(f, []byte(`40{"sid":"`)); ok {
				return c, string(v[:bytes.IndexByte(v, '"')])
			}
		}
	}
	reader, readerSID := dial("reader")
	stuck, stuckSID := dial("stuck") // never reads again
	_ = stuck
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
	values := map[string]any{}
	v := o.Values()
	for i := 0; i+1 < len(v); i += 2 {
		if b, ok := v[i+1].([]byte); ok {
			v[i+1] = string(b)
		}
		values[v[i].(string)] = v[i+1]
	}
	d := newDedup()
	base := time.Now().UnixMilli()
	var slowest time.Duration
	deadline := time.Now().Add(30 * time.Second)
	for i := range events {
		id := strconv.FormatInt(base, 10) + "-" + strconv.Itoa(i)
		values["src"] = id
		start := time.Now()
		s.dispatch(redis.XMessage{ID: id, Values: values}, d, &id)
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
