package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/roomstream/roomstream/e2e/harness"
	"github.com/roomstream/roomstream/e2e/testkit"
	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// The applied-events feed and its webhooks, on real processes: workers
// writing the feed, `roomstream hooks` processes delivering it to a
// receiver that checks every signature.

const (
	hookSecret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	hookTimeout = 400 * time.Millisecond
)

// hookReceiver is a backend's webhook endpoint on loopback. fail says,
// for a webhook id and its attempt (1, 2, ...), whether to answer 500
// ("500"), to answer after the hooks gave up ("timeout") or to accept
// ("").
type hookReceiver struct {
	t    *testing.T
	url  string
	wh   *standardwebhooks.Webhook
	fail func(id string, attempt int) string

	mu       sync.Mutex
	attempts map[string]int      // webhook id -> deliveries
	accepted map[string]int      // webhook id -> accepted deliveries
	byEvent  map[string]string   // room/entryId/type/n -> webhook id
	order    map[string][]string // room -> webhook ids, in first acceptance order
	bad      int                 // deliveries whose signature did not verify
}

func newHookReceiver(t *testing.T, fail func(id string, attempt int) string) *hookReceiver {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(hookSecret)
	if err != nil {
		t.Fatal(err)
	}
	rc := &hookReceiver{t: t, wh: wh, fail: fail, attempts: map[string]int{}, accepted: map[string]int{},
		byEvent: map[string]string{}, order: map[string][]string{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(rc.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	rc.url = "http://" + ln.Addr().String() + "/hook"
	return rc
}

func (rc *hookReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := rc.wh.Verify(body, r.Header); err != nil {
		rc.mu.Lock()
		rc.bad++
		rc.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var p struct {
		ID      string          `json:"id"`
		Type    string          `json:"type"`
		RoomID  string          `json:"roomId"`
		EntryID string          `json:"entryId"`
		Data    json.RawMessage `json:"data"`
	}
	_ = json.Unmarshal(body, &p)
	id := r.Header.Get("webhook-id")
	rc.mu.Lock()
	rc.attempts[id]++
	n := rc.attempts[id]
	// One event, however often delivered, has one id.
	key := p.RoomID + "/" + p.EntryID + "/" + p.Type + "/" + string(p.Data)
	if prev, ok := rc.byEvent[key]; ok && prev != id {
		rc.t.Errorf("event %s delivered as %s and as %s", key, prev, id)
	}
	rc.byEvent[key] = id
	if p.ID != id {
		rc.t.Errorf("body id %s, header %s", p.ID, id)
	}
	verdict := ""
	if rc.fail != nil {
		verdict = rc.fail(id, n)
	}
	if verdict == "" {
		if rc.accepted[id] == 0 {
			rc.order[p.RoomID] = append(rc.order[p.RoomID], id)
		}
		rc.accepted[id]++
	}
	rc.mu.Unlock()
	switch verdict {
	case "500":
		w.WriteHeader(http.StatusInternalServerError)
	case "timeout":
		time.Sleep(hookTimeout + 300*time.Millisecond)
	default:
		w.WriteHeader(http.StatusOK)
	}
}

// hookEnv is the environment of the deployment's hooks processes.
func (d *processDeployment) hookEnv(url string, extra ...string) harness.Env {
	return d.env.With(append([]string{"ROOMSTREAM_WEBHOOK_URL", url, "ROOMSTREAM_WEBHOOK_SECRET", hookSecret,
		"ROOMSTREAM_WEBHOOK_TIMEOUT", hookTimeout.String(), "ROOMSTREAM_WEBHOOK_BACKOFF", "100ms", "ROOMSTREAM_WEBHOOK_BACKOFF_MAX", "400ms",
		"ROOMSTREAM_WEBHOOK_MAX_ATTEMPTS", "5", "ROOMSTREAM_LEASE_TTL", "1s"}, extra...)...)
}

// feedIDs returns, per room, the webhook ids of the events in the feed,
// in feed order.
func (d *processDeployment) feedIDs(t *testing.T) (map[string][]string, int) {
	t.Helper()
	ctx, sc := context.Background(), d.streams()
	out, n := map[string][]string{}, 0
	for p := 0; p < 8; p++ {
		msgs, err := d.client().XRange(ctx, sc.Keys.Feed(p), "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			ev, err := streams.DecodeFeedEvent(p, m.ID, m.Values)
			if err != nil {
				t.Fatal(err)
			}
			out[ev.RoomID] = append(out[ev.RoomID], ev.EventID())
			n++
		}
	}
	return out, n
}

// waitHooksDrained waits until the hooks delivered (or dead-lettered)
// every event of the feed.
func (d *processDeployment) waitHooksDrained(t *testing.T, bound time.Duration) {
	t.Helper()
	testkit.WaitUntil(t, "every feed event delivered", bound, func() bool {
		lags, err := d.streams().HooksBacklogs(context.Background())
		if err != nil {
			return false
		}
		for _, l := range lags {
			if l != 0 {
				return false
			}
		}
		return true
	})
}

// flaky picks a fixed share of events by their id: the same ones on every
// delivery of an event.
func flaky(id string, mod uint32) bool {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return h.Sum32()%mod == 0
}

// TestWebhooksDeliverEveryEvent: with the feed on and two hooks
// processes, every feed event reaches the receiver signed, in its room's
// order, once; events refused with a 500 or left to time out on their
// first try are retried with the same webhook id.
func TestWebhooksDeliverEveryEvent(t *testing.T) {
	d := deploy(t, 2, 2, false, "ROOMSTREAM_EVENTS_FEED", "all")
	failed := map[string]string{}
	var fmu sync.Mutex
	rc := newHookReceiver(t, func(id string, attempt int) string {
		if attempt > 1 {
			return ""
		}
		verdict := ""
		switch {
		case flaky(id, 7):
			verdict = "500"
		case flaky(id+"t", 23):
			verdict = "timeout"
		}
		if verdict != "" {
			fmu.Lock()
			failed[id] = verdict
			fmu.Unlock()
		}
		return verdict
	})
	h1 := harness.StartHooks(t, "hooks1", d.hookEnv(rc.url))
	h2 := harness.StartHooks(t, "hooks2", d.hookEnv(rc.url))
	testkit.WaitUntil(t, "the hooks processes share the partitions", 20*time.Second, func() bool {
		ctx := context.Background()
		return h1.Metric(ctx, "roomstream_hooks_partitions_owned") == 4 && h2.Metric(ctx, "roomstream_hooks_partitions_owned") == 4
	})
	tr := newTraffic(t, []string{d.connectors[0].URL(), d.connectors[1].URL()}, 10, 2)
	tr.send(15, 20*time.Millisecond)
	if tl := tr.settle(10 * time.Second); tl.lost != 0 {
		t.Fatalf("clients: %s", tl)
	}
	d.waitHooksDrained(t, 60*time.Second)
	want, n := d.feedIDs(t)
	if n < 10*2*15 {
		t.Fatalf("the feed holds %d events, want at least the %d progress reports", n, 10*2*15)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for room, ids := range want {
		if got := rc.order[room]; strings.Join(got, " ") != strings.Join(ids, " ") {
			t.Errorf("room %s: accepted %d events %v..., the feed holds %d %v...", room, len(got), head(got), len(ids), head(ids))
		}
	}
	retries, timeouts := 0, 0
	for id, n := range rc.attempts {
		if rc.accepted[id] != 1 {
			t.Errorf("%s accepted %d times", id, rc.accepted[id])
		}
		verdict, ok := failed[id]
		switch {
		case ok && n != 2:
			t.Errorf("%s failed once (%s) and was delivered %d times", id, verdict, n)
		case !ok && n != 1:
			t.Errorf("%s delivered %d times", id, n)
		}
		if verdict == "timeout" {
			timeouts++
		}
		retries += n - 1
	}
	if rc.bad != 0 || timeouts == 0 || retries < 10 {
		t.Errorf("%d bad signatures, %d timeouts, %d retries", rc.bad, timeouts, retries)
	}
	ctx := context.Background()
	delivered := h1.Metric(ctx, "roomstream_hooks_delivered_total") + h2.Metric(ctx, "roomstream_hooks_delivered_total")
	retried := h1.Metric(ctx, "roomstream_hooks_retries_total") + h2.Metric(ctx, "roomstream_hooks_retries_total")
	if int(delivered) != n || int(retried) != retries {
		t.Errorf("metrics: delivered %v retried %v, want %d and %d", delivered, retried, n, retries)
	}
	t.Logf("%d feed events delivered by 2 hooks processes, %d retried (%d after a timeout)", n, retries, timeouts)
}

func head(ids []string) []string { return ids[:min(len(ids), 3)] }

// TestHooksCrashLosesNothing: kill -9 of a hooks process while events
// flow: its partitions move to the other once its leases expire, which
// delivers what it left pending; every event arrives, at least once, with
// one webhook id, in its room's order.
func TestHooksCrashLosesNothing(t *testing.T) {
	d := deploy(t, 2, 2, false, "ROOMSTREAM_EVENTS_FEED", "all")
	rc := newHookReceiver(t, func(string, int) string {
		time.Sleep(2 * time.Millisecond) // deliveries in flight when the process dies
		return ""
	})
	h1 := harness.StartHooks(t, "hooks1", d.hookEnv(rc.url))
	harness.StartHooks(t, "hooks2", d.hookEnv(rc.url))
	tr := newTraffic(t, []string{d.connectors[0].URL(), d.connectors[1].URL()}, 10, 2)
	done := make(chan struct{})
	go func() { defer close(done); tr.send(40, 25*time.Millisecond) }()
	for tr.sent.Load() < 300 {
		time.Sleep(10 * time.Millisecond)
	}
	h1.Kill()
	<-done
	d.waitHooksDrained(t, 60*time.Second)
	want, n := d.feedIDs(t)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	repeats := 0
	for room, ids := range want {
		if got := rc.order[room]; strings.Join(got, " ") != strings.Join(ids, " ") {
			t.Errorf("room %s: accepted %d events %v..., the feed holds %d %v...", room, len(got), head(got), len(ids), head(ids))
		}
	}
	for _, k := range rc.accepted {
		repeats += k - 1
	}
	if rc.bad != 0 {
		t.Errorf("%d bad signatures", rc.bad)
	}
	t.Logf("%d feed events, all delivered after a kill -9 of a hooks process (%d delivered again, with the same id)", n, repeats)
}

// TestFeedSkipsRefusedEvents: refused commands leave nothing in the feed
// (real clients, real processes); what was applied is there once.
func TestFeedSkipsRefusedEvents(t *testing.T) {
	d := deploy(t, 1, 1, false, "ROOMSTREAM_EVENTS_FEED", "all")
	url := d.connectors[0].URL()
	alice, bob := users.Dial(t, url, "alice", "Alice"), users.Dial(t, url, "bob", "Bob")
	testkit.MustAck(t, alice, schemas.EventJoinRoom, map[string]string{"roomId": "feed"})
	testkit.MustAck(t, bob, schemas.EventJoinRoom, map[string]string{"roomId": "feed"})
	testkit.MustAck(t, alice, schemas.EventLockRoom, map[string]string{"roomId": "feed"})
	for _, c := range []struct {
		event   string
		payload any
		code    schemas.Code
	}{
		{schemas.EventLockRoom, map[string]string{"roomId": "feed"}, schemas.CodeRoomLocked},
		{schemas.EventUnlockRoom, map[string]string{"roomId": "feed"}, schemas.CodeNotLockHolder},
		{schemas.EventLeaveRoom, map[string]string{"roomId": "elsewhere"}, schemas.CodeNotMember},
		{schemas.EventFileUploadProgress, map[string]any{"fileId": "f1", "uploadId": "f1", "fileName": "a", "roomId": "feed",
			"bytesUploaded": 1, "totalBytes": 2, "percentage": 50}, schemas.CodeRoomLocked},
	} {
		if a := testkit.Ack(t, bob, c.event, c.payload); a.OK || a.Error == nil || a.Error.Code != c.code {
			t.Fatalf("%s: ack %+v, want a refusal %s", c.event, a, c.code)
		}
	}
	testkit.MustAck(t, alice, schemas.EventUnlockRoom, map[string]string{"roomId": "feed"})
	testkit.WaitFor(t, bob, schemas.EventRoomUnlocked)
	got, _ := d.feedIDs(t)
	msgs, err := d.client().XRange(context.Background(), d.streams().Keys.Feed(streams.Partition("feed", 8)), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, m := range msgs {
		types = append(types, fmt.Sprint(m.Values["type"], " by ", m.Values["entryId"] != ""))
	}
	want := []string{"user-joined by true", "user-joined by true", "room-locked by true", "room-unlocked by true"}
	if strings.Join(types, ", ") != strings.Join(want, ", ") || len(got["feed"]) != 4 {
		t.Errorf("feed of the room: %v, want %v", types, want)
	}
}

// TestReplayVerifyWithFeed: with the feed on, `roomstream replay verify`
// still rebuilds every room from the inbound log to the live state.
func TestReplayVerifyWithFeed(t *testing.T) {
	d := deploy(t, 2, 2, false, "ROOMSTREAM_EVENTS_FEED", "all")
	tr := newTraffic(t, []string{d.connectors[0].URL(), d.connectors[1].URL()}, 5, 2)
	tr.send(10, 10*time.Millisecond)
	if tl := tr.settle(10 * time.Second); tl.lost != 0 {
		t.Fatalf("clients: %s", tl)
	}
	if _, n := d.feedIDs(t); n < 5*2*10 {
		t.Fatalf("the feed holds %d events", n)
	}
	cmd := exec.Command(d.connectors[0].Bin(), "replay", "verify")
	cmd.Env = d.cliEnv()
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "verify: 5 room(s): 5 match, 0 differ") {
		t.Fatalf("replay verify: %v\n%s", err, out)
	}
}
