package hooks

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/roomstream/roomstream/infra/testredis"
	"github.com/roomstream/roomstream/streams"
)

// receiver is a backend: it verifies every delivery's signature, answers
// as its script says, and records what it accepted and every attempt.
type receiver struct {
	t   *testing.T
	srv *httptest.Server
	wh  *standardwebhooks.Webhook

	mu sync.Mutex
	// answer, per webhook id and attempt (1, 2, ...): the status (0: 200),
	// or -1 to answer after the client gave up (a timeout).
	answer   func(id, typ string, attempt int) int
	attempts map[string]int
	ids      map[string]string   // event -> webhook-id seen first
	order    map[string][]string // room -> events accepted, in order
	accepted map[string]int      // webhook id -> times accepted
	bad      int                 // deliveries whose signature did not verify
}

func newReceiver(t *testing.T, answer func(id, typ string, attempt int) int) *receiver {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	rc := &receiver{t: t, wh: wh, answer: answer, attempts: map[string]int{}, ids: map[string]string{},
		order: map[string][]string{}, accepted: map[string]int{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	if err := rc.wh.Verify(b, r.Header); err != nil {
		rc.mu.Lock()
		rc.bad++
		rc.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var p Payload
	_ = json.Unmarshal(b, &p)
	var d struct {
		N int `json:"n"`
	}
	_ = json.Unmarshal(p.Data, &d)
	id := r.Header.Get("webhook-id")
	key := fmt.Sprintf("%s/%d", p.RoomID, d.N)
	rc.mu.Lock()
	rc.attempts[id]++
	n := rc.attempts[id]
	if first, ok := rc.ids[key]; ok && first != id {
		rc.t.Errorf("event %s delivered as %s, then as %s", key, first, id)
	}
	rc.ids[key] = id
	code := 0
	if rc.answer != nil {
		code = rc.answer(key, p.Type, n)
	}
	if code == 0 {
		rc.order[p.RoomID] = append(rc.order[p.RoomID], fmt.Sprintf("%d", d.N))
		rc.accepted[id]++
	}
	rc.mu.Unlock()
	switch code {
	case 0:
		w.WriteHeader(http.StatusNoContent)
	case -1:
		time.Sleep(testTimeout + 200*time.Millisecond)
	default:
		w.WriteHeader(code)
	}
}

func (rc *receiver) snapshot() (order map[string][]string, attempts map[string]int, bad int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	order = map[string][]string{}
	for k, v := range rc.order {
		order[k] = append([]string(nil), v...)
	}
	attempts = map[string]int{}
	for k, v := range rc.attempts {
		attempts[k] = v
	}
	return order, attempts, rc.bad
}

const (
	testSecret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	testTimeout = 300 * time.Millisecond
)

type fixture struct {
	t   *testing.T
	rdb *redis.Client
	c   *streams.Client
	cfg Config
	seq int
}

func newFixture(t *testing.T, url string) *fixture {
	t.Helper()
	rdb := testredis.Start(t, nil).Client()
	cfg := Config{
		Config: streams.Config{Partitions: 2, KeyPrefix: "k:", InboundRetention: time.Hour, InboundMaxLen: 1000, RecoveryWindow: time.Minute},
		URL:    url, Secret: testSecret, Timeout: testTimeout, MaxAttempts: 3, Backoff: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		Concurrency: 4, BatchSize: 10, MaxQueued: 100, LeaseTTL: 600 * time.Millisecond,
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	c := streams.New(rdb, cfg.Config)
	if err := c.LoadFeedScript(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The group exists before anything is fed, so that drained sees
	// the backlog.
	for p := range cfg.Partitions {
		if err := c.EnsureHooksGroup(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	return &fixture{t: t, rdb: rdb, c: c, cfg: cfg}
}

// feed appends n events of type typ to room's partition p, numbered on.
func (f *fixture) feed(p int, room, typ string, n int) {
	f.t.Helper()
	var entries []streams.FeedEntry
	for range n {
		f.seq++
		entries = append(entries, streams.FeedEntry{EntryID: fmt.Sprintf("%d-0", f.seq), RoomID: room, At: "2026-01-02T03:04:05.000Z",
			Events: []streams.FeedItem{{Type: typ, Data: []byte(fmt.Sprintf(`{"n":%d}`, f.seq))}}})
	}
	if err := f.c.FeedAppend(context.Background(), f.rdb, p, entries, "0-0", 1000, time.Hour).Err(); err != nil {
		f.t.Fatal(err)
	}
}

// start runs a hooks process with cfg until the test ends or the
// returned stop is called.
func (f *fixture) start(cfg Config, name string) (*Hooks, func()) {
	f.t.Helper()
	cfg.HooksID = name
	h, err := New(cfg, f.c, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = h.Run(ctx) }()
	stop := func() { cancel(); <-done }
	f.t.Cleanup(stop)
	return h, stop
}

// drained waits until no feed event of the hooks' group is pending or
// unread.
func (f *fixture) drained(d time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(d)
	for {
		lags, err := f.c.HooksBacklogs(context.Background())
		total := int64(0)
		for _, l := range lags {
			total += l
		}
		if err == nil && total == 0 {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("hooks not drained after %s: backlogs %v %v", d, lags, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func numbers(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprint(i))
	}
	return out
}

// TestDeliversEveryEventInRoomOrder: every event reaches the receiver,
// signed, in its room's order; a 500 and a timeout are retried with the
// same webhook id, and while one room waits for its retry another room's
// events go on.
func TestDeliversEveryEventInRoomOrder(t *testing.T) {
	var slowDone, fastDone time.Time
	var mu sync.Mutex
	rc := newReceiver(t, func(key, _ string, attempt int) int {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case key == "r1/2" && attempt == 1:
			return http.StatusInternalServerError
		case key == "r1/3" && attempt == 1:
			return -1
		case key == "r1/5":
			slowDone = time.Now()
		case key == "r2/10":
			fastDone = time.Now()
		}
		return 0
	})
	f := newFixture(t, rc.srv.URL)
	f.feed(0, "r1", "room-locked", 5) // 1..5
	f.feed(0, "r2", "user-joined", 5) // 6..10
	f.start(f.cfg, "h1")
	f.drained(10 * time.Second)
	order, attempts, bad := rc.snapshot()
	if diff := cmp.Diff(map[string][]string{"r1": numbers(1, 5), "r2": numbers(6, 10)}, order); diff != "" {
		t.Errorf("accepted (-want,+got):\n%s", diff)
	}
	retried := 0
	for _, n := range attempts {
		retried += n - 1
	}
	if bad != 0 || retried != 2 {
		t.Errorf("%d deliveries with a bad signature, %d retries (want 0 and 2): %v", bad, retried, attempts)
	}
	mu.Lock()
	defer mu.Unlock()
	if !fastDone.Before(slowDone) {
		t.Errorf("r2 waited for r1's retries: r2 done at %s, r1 at %s", fastDone.Format(time.StampMicro), slowDone.Format(time.StampMicro))
	}
}

// TestDeadLetterAndRequeue: an event refused MAX_ATTEMPTS times goes to
// the webhook dead letters and its room's next events go on; requeued,
// it is delivered with its own webhook id.
func TestDeadLetterAndRequeue(t *testing.T) {
	var mu sync.Mutex
	refuse := true
	rc := newReceiver(t, func(key, _ string, _ int) int {
		mu.Lock()
		defer mu.Unlock()
		if key == "r1/2" && refuse {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	f := newFixture(t, rc.srv.URL)
	f.feed(1, "r1", "room-locked", 3)
	h, _ := f.start(f.cfg, "h1")
	f.drained(10 * time.Second)
	order, attempts, _ := rc.snapshot()
	if diff := cmp.Diff(map[string][]string{"r1": {"1", "3"}}, order); diff != "" {
		t.Errorf("accepted (-want,+got):\n%s", diff)
	}
	dead, err := f.c.WebhookDeadLetters(context.Background(), -1)
	if err != nil || len(dead) != 1 || dead[0].Partition != 1 || dead[0].Attempts != 3 || dead[0].Error != "HTTP 503" {
		t.Fatalf("dead letters %+v %v", dead, err)
	}
	id := "evt_1_" + dead[0].Source
	if attempts[id] != 3 {
		t.Errorf("the dead event was tried %d times as %s: %v", attempts[id], id, attempts)
	}
	if v := testMetric(h.m.deadLetters); v != 1 {
		t.Errorf("dead letters counted: %v", v)
	}
	mu.Lock()
	refuse = false
	mu.Unlock()
	if _, err := f.c.RequeueWebhook(context.Background(), 1, dead[0].ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		order, attempts, _ = rc.snapshot()
		if len(order["r1"]) == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if diff := cmp.Diff([]string{"1", "3", "2"}, order["r1"]); diff != "" || attempts[id] != 4 {
		t.Errorf("after the requeue, %d attempts as %s; accepted (-want,+got):\n%s", attempts[id], id, diff)
	}
}

// TestFilteredEventsAreSkipped: with WEBHOOK_EVENTS set, other types are
// acknowledged without a delivery.
func TestFilteredEventsAreSkipped(t *testing.T) {
	rc := newReceiver(t, nil)
	f := newFixture(t, rc.srv.URL)
	f.feed(0, "r1", "file-upload-progress", 3)
	f.feed(0, "r1", "room-locked", 1)
	f.feed(1, "r2", "app:note", 1)
	cfg := f.cfg
	cfg.Events = []string{"room-locked", "app:*"}
	h, _ := f.start(cfg, "h1")
	f.drained(10 * time.Second)
	order, _, _ := rc.snapshot()
	if diff := cmp.Diff(map[string][]string{"r1": {"4"}, "r2": {"5"}}, order); diff != "" {
		t.Errorf("accepted (-want,+got):\n%s", diff)
	}
	if v := testMetric(h.m.skipped); v != 3 {
		t.Errorf("skipped counted: %v", v)
	}
}

// TestTakeoverDeliversWhatWasPending: a hooks process died with events
// read and not delivered; once its lease expires another takes the
// partition and delivers them (at least once), then what follows, in
// order; two live processes share the partitions.
func TestTakeoverDeliversWhatWasPending(t *testing.T) {
	rc := newReceiver(t, nil)
	f := newFixture(t, rc.srv.URL)
	f.feed(0, "r1", "room-locked", 4)
	ctx := context.Background()
	// The dead process: it held partition 0's lease and had read three
	// events under the partition's consumer name.
	if token, err := f.c.AcquireHooksLease(ctx, 0, "dead", f.cfg.LeaseTTL); err != nil || token == 0 {
		t.Fatal(token, err)
	}
	if err := f.c.EnsureHooksGroup(ctx, 0); err != nil {
		t.Fatal(err)
	}
	r := &streams.HooksRead{Consumer: "p0", FeedID: ">", RedoID: ">", Count: 3}
	if err := f.c.ReadHooks(ctx, 0, r); err != nil || len(r.Feed) != 3 {
		t.Fatal(r.Feed, err)
	}
	a, _ := f.start(f.cfg, "h1")
	b, _ := f.start(f.cfg, "h2")
	f.feed(0, "r1", "room-locked", 2)
	f.drained(10 * time.Second)
	order, _, _ := rc.snapshot()
	if diff := cmp.Diff(map[string][]string{"r1": numbers(1, 6)}, order); diff != "" {
		t.Errorf("accepted (-want,+got):\n%s", diff)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(a.Owned())+len(b.Owned()) != 2 || len(a.Owned()) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("partitions not shared: %v and %v", a.Owned(), b.Owned())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testMetric reads a counter.
func testMetric(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }
