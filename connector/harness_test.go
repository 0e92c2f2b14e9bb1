package connector

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/kelseyhightower/envconfig"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/roomstream/roomstream/connector/protocol"
	"github.com/roomstream/roomstream/e2e/sioclient"
	"github.com/roomstream/roomstream/e2e/testkit"
	"github.com/roomstream/roomstream/infra/testredis"
	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
	"github.com/roomstream/roomstream/workers"
)

// The package's one live-server harness: a connector (and, for the tests
// that need events applied, a worker) on a private redis-server, served
// over httptest, and the token, dial and ack helpers of its clients.

// testSecret signs every test token (the harness's JWT_SECRET).
const testSecret = "test-secret-0123456789"

// defaults fills spec with its envconfig defaults (no variable uses this
// prefix).
func defaults(tb testing.TB, spec any) {
	tb.Helper()
	if err := envconfig.Process("ROOMSTREAM_TEST_DEFAULTS_ONLY", spec); err != nil {
		tb.Fatal(err)
	}
}

// harness is a running connector.
type harness struct {
	redis *testredis.Server
	base  string // http://host:port, /socket.io/ served under it
	srv   *Server
	cfg   Config
	c     *streams.Client
	ctx   context.Context // ends when the test does
	reg   *prometheus.Registry
}

// harnessOptions say what startWith runs.
type harnessOptions struct {
	// redis is the server to run on (nil: a private one).
	redis *testredis.Server
	// tweak changes the default configuration.
	tweak func(*Config)
	// worker runs a worker beside the connector, so that events are
	// applied; without one, only what a test writes reaches the sockets.
	worker bool
	// now is the connector's clock (nil: time.Now).
	now func() time.Time
	// workerTweak changes the worker's default configuration.
	workerTweak func(*workers.Config)
}

// start runs a connector and a worker on a fresh redis-server.
func start(tb testing.TB, tweak func(*Config)) *harness {
	tb.Helper()
	return startWith(tb, harnessOptions{tweak: tweak, worker: true})
}

// startOn runs a connector and a worker on rs.
func startOn(tb testing.TB, rs *testredis.Server, tweak func(*Config)) *harness {
	tb.Helper()
	return startWith(tb, harnessOptions{redis: rs, tweak: tweak, worker: true})
}

// startConnector runs a connector alone on a fresh redis-server, for the
// tests and benchmarks that drive its outbound path themselves.
func startConnector(tb testing.TB, tweak func(*Config)) *harness {
	tb.Helper()
	return startWith(tb, harnessOptions{tweak: tweak})
}

// connectorOn runs one more connector (no worker) on rs, beside one that
// startOn runs there.
func connectorOn(tb testing.TB, rs *testredis.Server) *harness {
	tb.Helper()
	return startWith(tb, harnessOptions{redis: rs})
}

func startWith(tb testing.TB, o harnessOptions) *harness {
	tb.Helper()
	rs := o.redis
	if rs == nil {
		rs = testredis.Start(tb, nil)
	}
	var cc Config
	defaults(tb, &cc)
	cc.RedisURL, cc.JWTSecret, cc.Partitions, cc.KeyPrefix = rs.URL(), testSecret, 4, "t:"
	if o.tweak != nil {
		o.tweak(&cc)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rdb, err := cc.Connect(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	c := streams.New(rdb, cc.Config)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(&testWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	mux := http.NewServeMux()
	hs := httptest.NewUnstartedServer(mux)
	cc.AdvertiseAddr = hs.Listener.Addr().String() // where the other connectors of a test forward polling requests
	reg := prometheus.NewRegistry()
	srv := New(cc, c, log, &Options{Registerer: reg, Now: o.now})
	srvDone := make(chan struct{})
	go func() { defer close(srvDone); _ = srv.Run(ctx) }()
	var w *workers.Worker
	wDone := make(chan struct{})
	if o.worker {
		var wc workers.Config
		defaults(tb, &wc)
		wc.Config = cc.Config
		if o.workerTweak != nil {
			o.workerTweak(&wc)
		}
		w = workers.New(wc, c, log, nil)
		go func() { defer close(wDone); _ = w.Run(ctx) }()
	} else {
		close(wDone)
	}
	mux.Handle("/socket.io/", srv.Handler())
	// Served as a connector process serves it: its deadlines, and its
	// connections counted per address.
	hs.Config = HTTPServer(cc, srv.guard, mux)
	hs.Listener = srv.guard.Listen(hs.Listener)
	hs.Start()
	tb.Cleanup(func() {
		cancel()
		<-srvDone
		<-wDone
		hs.Close()
		_ = rdb.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for !srv.Ready() || w != nil && !w.Ready() {
		if time.Now().After(deadline) {
			tb.Fatal("connector (or worker) not ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Wait until every partition has an owner, so that events flow.
	for w != nil && len(w.Owned()) < cc.Partitions {
		if time.Now().After(deadline) {
			tb.Fatalf("worker owns %d partitions", len(w.Owned()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	return &harness{redis: rs, base: hs.URL, srv: srv, cfg: cc, c: c, ctx: ctx, reg: reg}
}

// wsURL is where a WebSocket client opens an Engine.IO session.
func (h *harness) wsURL() string {
	return strings.Replace(h.base, "http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
}

// awaitHeld waits until the connector holds dropped socket sid for
// recovery (its record says when it dropped).
func (h *harness) awaitHeld(tb testing.TB, sid string) {
	tb.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if n, _ := h.c.Redis().HExists(h.ctx, h.c.Keys.Socket(sid), "droppedAt").Result(); n {
			return
		} else if time.Now().After(deadline) {
			tb.Fatal("the dropped socket was not held")
		}
	}
}

type testWriter struct{ tb testing.TB }

func (w *testWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// metric sums the connector's samples of a metric whose labels include
// the given name=value pairs.
func metric(tb testing.TB, h *harness, name string, labels ...string) float64 {
	tb.Helper()
	fams, err := h.reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	var sum float64
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if !hasLabels(m.GetLabel(), labels) {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// histogram returns the count and sum of the connector's histogram name
// in the series whose labels include the given name=value pairs.
func histogram(tb testing.TB, h *harness, name string, labels ...string) (count uint64, sum float64) {
	tb.Helper()
	fams, err := h.reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m.GetLabel(), labels) {
				count, sum = count+m.GetHistogram().GetSampleCount(), sum+m.GetHistogram().GetSampleSum()
			}
		}
	}
	return count, sum
}

// hasLabels tells whether got includes every name=value pair of want.
func hasLabels(got []*dto.LabelPair, want []string) bool {
	for i := 0; i+1 < len(want); i += 2 {
		found := false
		for _, l := range got {
			found = found || (l.GetName() == want[i] && l.GetValue() == want[i+1])
		}
		if !found {
			return false
		}
	}
	return true
}

// token signs a token for user with testSecret.
func token(tb testing.TB, user, name string, ttl time.Duration) string {
	tb.Helper()
	return testkit.Token(tb, testSecret, user, name, ttl)
}

// dial connects a Socket.IO client with tok ("": none).
func dial(tb testing.TB, h *harness, tok string) *sioclient.Client {
	tb.Helper()
	c, err := sioclient.Dial(context.Background(), h.base, &sioclient.Options{Token: tok})
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// dialWS connects a bare WebSocket client as user, CONNECTed with a
// token, and returns it with its socket id; the test reads and answers
// its frames itself.
func (h *harness) dialWS(tb testing.TB, user string) (*websocket.Conn, string) {
	tb.Helper()
	ctx := context.Background()
	tok := token(tb, user, user, time.Hour)
	c, _, err := websocket.Dial(ctx, h.wsURL(), nil)
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

func waitCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// ack emits event with payload, waits for its acknowledgement and
// decodes it.
func ack(tb testing.TB, c *sioclient.Client, event string, payload any) schemas.Ack {
	tb.Helper()
	return testkit.Ack(tb, c, event, payload)
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

// runAppendLoops runs the append loops of a connector that Run does not
// run, as Run does, until ctx ends; it returns once they take events.
func runAppendLoops(tb testing.TB, ctx context.Context, s *Server) {
	tb.Helper()
	for range appenders {
		go s.appendLoop(ctx)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		s.appends.mu.Lock()
		n := s.appends.loops
		s.appends.mu.Unlock()
		if n == appenders {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatal("append loops not running")
		}
	}
}

// appendSocket returns a socket whose connection has closed already:
// what it appends goes through its queue as a live socket's events do,
// and nothing is written to it.
func appendSocket(s *Server) *socket {
	so := newSocket(s, nil)
	so.closed = true
	return so
}

// appendVia appends env through so's queue, trying for window, and
// returns the result.
func appendVia(so *socket, env streams.Envelope, window time.Duration) error {
	r := so.newAppendReq(&protocol.Packet{}, env.Type, env.RoomID)
	r.env, r.deadline = env, time.Now().Add(window)
	so.queueAppend(r)
	so.awaitAppend(r)
	return r.err
}
