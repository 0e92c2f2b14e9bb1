package connector

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/kelseyhightower/envconfig"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomstream/roomstream/connector/auth"
	"github.com/roomstream/roomstream/infra/testredis"
	"github.com/roomstream/roomstream/streams"
)

// live is a running connector on a private redis-server, served over
// httptest, for tests and benchmarks that drive its outbound path with
// real WebSocket clients.
type live struct {
	s   *Server
	cfg Config
	url string
}

// startLive starts a connector with default settings changed by tweak.
func startLive(tb testing.TB, tweak func(*Config)) *live {
	tb.Helper()
	return startLiveClock(tb, tweak, nil)
}

// startLiveClock is startLive with the clock now (nil: time.Now).
func startLiveClock(tb testing.TB, tweak func(*Config), now func() time.Time) *live {
	tb.Helper()
	rs := testredis.Start(tb, nil)
	var cfg Config
	if err := envconfig.Process("ROOMSTREAM_TEST_DEFAULTS_ONLY", &cfg); err != nil {
		tb.Fatal(err)
	}
	cfg.RedisURL, cfg.JWTSecret, cfg.Partitions = rs.URL(), "test-secret-0123456789", 4
	if tweak != nil {
		tweak(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rdb, err := cfg.Connect(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	s := New(cfg, streams.New(rdb, cfg.Config), slog.New(slog.NewTextHandler(io.Discard, nil)),
		&Options{Registerer: prometheus.NewRegistry(), Now: now})
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	hs := httptest.NewServer(s.Handler())
	tb.Cleanup(func() { cancel(); <-done; hs.Close(); _ = rdb.Close() })
	for !s.Ready() {
		time.Sleep(5 * time.Millisecond)
	}
	return &live{s: s, cfg: cfg, url: "ws" + hs.URL[4:] + "/socket.io/?EIO=4&transport=websocket"}
}

// dial connects a client as user and returns it with its socket id.
func (l *live) dial(tb testing.TB, user string) (*websocket.Conn, string) {
	tb.Helper()
	ctx := context.Background()
	tok, _ := auth.Sign(l.cfg.JWTSecret, user, user, time.Hour)
	c, _, err := websocket.Dial(ctx, l.url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	c.SetReadLimit(1 << 20)
	tb.Cleanup(func() { _ = c.CloseNow() })
	if _, _, err := c.Read(ctx); err != nil { // open packet
		tb.Fatal(err)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte(`40{"token":"`+tok+`"}`)); err != nil {
		tb.Fatal(err)
	}
	for {
		_, f, err := c.Read(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		if v, ok := bytes.CutPrefix(f, []byte(`40{"sid":"`)); ok {
			return c, string(v[:bytes.IndexByte(v, '"')])
		}
	}
}

// asRead returns o's stream fields as XREAD returns them (strings).
func asRead(o *streams.Outbound) map[string]any {
	v := o.Values()
	values := make(map[string]any, len(v)/2)
	for i := 0; i+1 < len(v); i += 2 {
		if b, ok := v[i+1].([]byte); ok {
			v[i+1] = string(b)
		}
		values[v[i].(string)] = v[i+1]
	}
	return values
}
