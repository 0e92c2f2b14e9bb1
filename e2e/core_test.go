package e2e

import (
	"context"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/roomstream/roomstream/e2e/harness"
	"github.com/roomstream/roomstream/e2e/sioclient"
	"github.com/roomstream/roomstream/e2e/testkit"
	"github.com/roomstream/roomstream/schemas"
)

// TestTwoConnectorsTwoWorkers: a client on connector A sees a client on
// connector B join, lock and report progress, through Redis Streams and
// two worker processes.
func TestTwoConnectorsTwoWorkers(t *testing.T) {
	d := deploy(t, 2, 2, false)
	a := users.Dial(t, d.connectors[0].URL(), "alice", "Alice")
	b := users.Dial(t, d.connectors[1].URL(), "bob", "Bob")
	testkit.MustAck(t, a, schemas.EventJoinRoom, map[string]string{"roomId": "design", "userId": "alice"})
	snap := testkit.MustAck(t, b, schemas.EventJoinRoom, map[string]string{"roomId": "design", "userId": "bob"})
	if len(snap.Room.Members) != 2 {
		t.Fatalf("bob's snapshot has %d members", len(snap.Room.Members))
	}
	testkit.WaitFor(t, a, schemas.EventUserJoined, `"userId":"bob"`, `"userName":"Bob"`)

	testkit.MustAck(t, b, schemas.EventLockRoom, map[string]string{"roomId": "design", "reason": "review"})
	testkit.WaitFor(t, a, schemas.EventRoomLocked, `"lockedBy":"bob"`, `"lockedByName":"Bob"`, `"reason":"review"`)

	testkit.MustAck(t, b, schemas.EventFileUploadStarted, map[string]any{"fileId": "f1", "fileName": "plan.pdf", "roomId": "design", "size": 2048, "mimeType": "application/pdf"})
	testkit.WaitFor(t, a, schemas.EventFileUploadStarted, `"fileName":"plan.pdf"`, `"userName":"Bob"`)
	for _, n := range []int{512, 1024, 2048} {
		testkit.MustAck(t, b, schemas.EventFileUploadProgress, map[string]any{"fileId": "f1", "uploadId": "f1", "fileName": "plan.pdf",
			"roomId": "design", "userId": "bob", "bytesUploaded": n, "totalBytes": 2048, "percentage": float64(n) / 2048 * 100})
	}
	ev := testkit.WaitFor(t, a, schemas.EventFileUploadProgress, `"bytesUploaded":2048`)
	var p schemas.FileUploadProgressPayload
	if ev.Decode(&p); p.Percentage != 100 || p.UserID != "bob" {
		t.Errorf("progress %+v", p)
	}
	// Alice cannot upload into bob's locked room...
	raw, _ := a.EmitAck(testkit.Within(t, 5*time.Second), schemas.EventFileUploadStarted, map[string]any{"fileId": "f2", "fileName": "x", "roomId": "design", "size": 1})
	if !strings.Contains(string(raw), `"room_locked"`) {
		t.Errorf("upload into a room locked by another: %s", raw)
	}
	testkit.MustAck(t, b, schemas.EventFileUploadCompleted, map[string]any{"fileId": "f1", "fileName": "plan.pdf", "roomId": "design", "size": 2048, "mimeType": "application/pdf"})
	testkit.WaitFor(t, a, schemas.EventFileAdded, `"id":"f1"`, `"uploadedByName":"Bob"`)
	testkit.MustAck(t, b, schemas.EventUnlockRoom, map[string]string{"roomId": "design"})
	testkit.WaitFor(t, a, schemas.EventRoomUnlocked, `"unlockedBy":"bob"`)
	b.Close()
	testkit.WaitFor(t, a, schemas.EventUserLeft, `"userId":"bob"`, `"reason":"disconnected"`)
}

// TestKeysFollowTheDesign lists every key a session leaves behind, with its
// TTL, and checks names and lifetimes against the design.
func TestKeysFollowTheDesign(t *testing.T) {
	d := deploy(t, 1, 1, false)
	a := users.Dial(t, d.connectors[0].URL(), "alice", "Alice")
	b := users.Dial(t, d.connectors[0].URL(), "bob", "Bob")
	testkit.MustAck(t, a, schemas.EventJoinRoom, map[string]string{"roomId": "r1"})
	testkit.MustAck(t, b, schemas.EventJoinRoom, map[string]string{"roomId": "r1"})
	testkit.MustAck(t, a, schemas.EventLockRoom, map[string]string{"roomId": "r1"})
	testkit.MustAck(t, a, schemas.EventFileUploadProgress, map[string]any{"fileId": "f1", "uploadId": "u1", "fileName": "a.bin", "roomId": "r1",
		"bytesUploaded": 10, "totalBytes": 100, "percentage": 10})
	testkit.MustAck(t, b, schemas.EventJoinRoom, map[string]string{"roomId": "r2"})
	testkit.MustAck(t, b, schemas.EventLeaveRoom, map[string]string{"roomId": "r2"})

	rdb := d.redis.Client()
	ctx := context.Background()
	// The janitor lease is taken right after the worker starts.
	for deadline := time.Now().Add(10 * time.Second); rdb.Exists(ctx, "e2e:{janitor}:lease").Val() == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no janitor lease 10s after the worker started")
		}
	}
	type key struct{ pattern, ttl string }
	var got []key
	sockets := map[string]bool{}
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	day, week := 24*time.Hour, 7*24*time.Hour
	for iter.Next(ctx) {
		k := iter.Val()
		ttl := rdb.TTL(ctx, k).Val()
		class := "none"
		switch {
		case ttl > 0 && ttl <= time.Minute: // heartbeats and leases: seconds
			class = "1m"
		case ttl > time.Minute && ttl <= 15*time.Minute:
			class = "15m"
		case ttl > 15*time.Minute && ttl <= day:
			class = "24h"
		case ttl > day && ttl <= 26*time.Hour: // the applied marker, refreshed hourly
			class = "26h"
		case ttl > day && ttl <= week:
			class = "7d"
		case ttl > 0:
			class = ttl.String()
		}
		if m := regexp.MustCompile(`^e2e:socket:\{([^}]+)\}`).FindStringSubmatch(k); m != nil {
			sockets[m[1]] = true
		}
		pattern := regexp.MustCompile(`\{[^}]+\}`).ReplaceAllStringFunc(k, func(s string) string {
			switch {
			case s == "{janitor}":
				return s
			case strings.HasPrefix(k, "e2e:in:"), strings.HasPrefix(k, "e2e:room:"), strings.HasPrefix(k, "e2e:user:"), strings.HasPrefix(k, "e2e:upload:"):
				return s
			}
			return "{…}"
		})
		got = append(got, key{pattern, class})
		t.Logf("%-34s TTL %s", k, ttl)
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	want := []key{
		{"e2e:connector:{…}", "1m"},      // heartbeat: 10s
		{"e2e:connector:{…}:addr", "1m"}, // where other connectors forward polling requests: the heartbeat's TTL
		{"e2e:connector:{…}:sockets", "none"},
		{"e2e:connectors", "none"},
		{"e2e:{janitor}:epoch", "none"},
		{"e2e:{janitor}:lease", "1m"},
		{"e2e:meta", "none"},
		{"e2e:out:{…}", "none"},
		{"e2e:resume:{…}", "15m"},
		{"e2e:resume:{…}", "15m"},
		{"e2e:room:{r1}", "none"}, // active room: no TTL
		{"e2e:room:{r1}:applied", "26h"},
		{"e2e:room:{r1}:conns", "none"}, // where the room's events go: connector -> its sockets in the room
		{"e2e:room:{r1}:sockets", "none"},
		{"e2e:room:{r1}:uploads", "none"},
		{"e2e:room:{r1}:users", "none"},
		{"e2e:room:{r2}", "7d"}, // empty room: 7 days
		{"e2e:room:{r2}:applied", "26h"},
		{"e2e:session:{…}", "24h"},
		{"e2e:session:{…}", "24h"},
		{"e2e:socket:{…}", "24h"},
		{"e2e:socket:{…}", "24h"},
		{"e2e:socket:{…}:rooms", "none"},
		{"e2e:socket:{…}:rooms", "none"},
		{"e2e:upload:{u1}:progress", "24h"},
		{"e2e:user:{alice}:created", "1m"}, // alice created r1 (bob r2): the room creation rate's window
		{"e2e:user:{alice}:joining", "1m"}, // her join of r1 holds its place a minute
		{"e2e:user:{alice}:rooms", "24h"},
		{"e2e:user:{alice}:sockets", "24h"},
		{"e2e:user:{bob}:created", "1m"},
		{"e2e:user:{bob}:joining", "1m"},
		{"e2e:user:{bob}:rooms", "24h"},
		{"e2e:user:{bob}:sockets", "24h"},
		{"e2e:worker:{…}", "1m"}, // registration: the newest stream format it reads; the lease TTL
		{"e2e:workers", "none"},
	}
	for p := 0; p < 8; p++ {
		want = append(want, key{"e2e:in:{" + string(rune('0'+p)) + "}", "none"}, key{"e2e:in:{" + string(rune('0'+p)) + "}:epoch", "none"}, key{"e2e:in:{" + string(rune('0'+p)) + "}:lease", "1m"})
	}
	sortKeys := func(ks []key) {
		sort.Slice(ks, func(i, j int) bool {
			if ks[i].pattern != ks[j].pattern {
				return ks[i].pattern < ks[j].pattern
			}
			return ks[i].ttl < ks[j].ttl
		})
	}
	sortKeys(got)
	sortKeys(want)
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(key{})); diff != "" {
		t.Errorf("keys after a session (-want,+got):\n%s", diff)
	}
	// Socket keys of the socket's rooms: the sockets set of r1 is socketId → …
	if len(sockets) != 2 {
		t.Errorf("socket keys for %d sockets, want 2", len(sockets))
	}
	// Closing both clients removes their socket keys at once.
	a.Close()
	b.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, _ := rdb.Keys(ctx, "e2e:socket:*").Result()
		if len(n) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("socket keys left after the clients closed: %v", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMetricsAndHealth: every process serves /healthz, /readyz and the
// metrics the operators' dashboards need, with values that move.
func TestMetricsAndHealth(t *testing.T) {
	d := deploy(t, 1, 1, false)
	a := users.Dial(t, d.connectors[0].URL(), "alice", "Alice")
	testkit.MustAck(t, a, schemas.EventJoinRoom, map[string]string{"roomId": "m1"})
	testkit.MustAck(t, a, schemas.EventLockRoom, map[string]string{"roomId": "m1"})
	if _, err := sioclient.Dial(context.Background(), d.connectors[0].URL(), &sioclient.Options{Token: "not.a.jwt"}); err == nil {
		t.Fatal("a garbage token was accepted")
	}
	ctx := context.Background()
	for _, p := range []*harness.Proc{d.connectors[0], d.workers[0]} {
		for _, path := range []string{"/healthz", "/readyz"} {
			res, err := http.Get(p.URL() + path)
			if err != nil || res.StatusCode != 200 {
				t.Errorf("%s %s: %v %v", p.Name, path, res, err)
			}
			if res != nil {
				res.Body.Close()
			}
		}
	}
	for name, min := range map[string]float64{
		"roomstream_connector_connections":                1,
		"roomstream_connector_events_in_total":            2,
		"roomstream_connector_events_out_total":           3,
		"roomstream_connector_rate_limited_total":         0,
		"roomstream_connector_slow_sockets_dropped_total": 0,
		"roomstream_connector_auth_failures_total":        1, // the refused token above
	} {
		if v := d.connectors[0].MetricAtLeast(ctx, name, min, 10*time.Second); v < min {
			t.Errorf("connector metric %s = %v, want at least %v", name, v, min)
		}
	}
	for name, min := range map[string]float64{
		"roomstream_worker_events_applied_total":    2,
		"roomstream_worker_apply_seconds_count":     2,
		"roomstream_worker_events_out_total":        2,
		"roomstream_worker_partitions_owned":        8,
		"roomstream_worker_lease_changes_total":     8,
		"roomstream_worker_claimed_total":           0,
		"roomstream_worker_dead_letters_total":      0,
		"roomstream_partition_pending":              0, // set by the janitor's first trim round
		"roomstream_partition_lag":                  0,
		"roomstream_worker_connectors_reaped_total": 0,
	} {
		if v := d.workers[0].MetricAtLeast(ctx, name, min, 10*time.Second); v < min {
			t.Errorf("worker metric %s = %v, want at least %v", name, v, min)
		}
	}
}
