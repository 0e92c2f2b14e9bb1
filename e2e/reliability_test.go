package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/connector"
	"github.com/roomstream/roomstream/e2e/harness"
	"github.com/roomstream/roomstream/e2e/testkit"
	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// modes runs a scenario on a single redis-server and on a 3-master Redis
// Cluster.
func modes(t *testing.T, f func(t *testing.T, cluster bool)) {
	t.Run("standalone", func(t *testing.T) { f(t, false) })
	t.Run("cluster", func(t *testing.T) { f(t, true) })
}

func (d *processDeployment) client() redis.UniversalClient {
	if d.cluster != nil {
		return d.cluster.Client()
	}
	return d.redis.Client()
}

func (d *processDeployment) streams() *streams.Client {
	return streams.New(d.client(), streams.Config{Partitions: 8, KeyPrefix: "e2e:", RecoveryWindow: 2 * time.Minute})
}

// cliEnv is the environment for a roomstream CLI command (deadletters,
// replay) against this deployment's standalone Redis.
func (d *processDeployment) cliEnv() []string {
	return append(os.Environ(), "ROOMSTREAM_REDIS_URL="+d.redis.URL(), "ROOMSTREAM_PARTITIONS=8", "ROOMSTREAM_KEY_PREFIX=e2e:")
}

// ownedBy sums the partitions the running workers hold.
func (d *processDeployment) owned() int {
	n := 0.0
	for _, w := range d.workers {
		if w.Running() {
			if v := w.Metric(context.Background(), "roomstream_worker_partitions_owned"); v > 0 {
				n += v
			}
		}
	}
	return int(n)
}

// assertDrained checks that every inbound entry was acknowledged and none
// went to the dead letters.
func (d *processDeployment) assertDrained(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	rdb := d.client()
	sc := d.streams()
	// A worker acknowledges an entry with its next read, a moment after
	// the entry's effects reached the clients: wait for that, a while.
	for p := 0; p < 8; p++ {
		deadline := time.Now().Add(10 * time.Second)
		for {
			sum, err := rdb.XPending(ctx, sc.Keys.Inbound(p), streams.Group).Result()
			if err != nil {
				t.Fatalf("XPENDING partition %d: %v", p, err)
			}
			if sum.Count == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("partition %d: %d entries never acknowledged", p, sum.Count)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	dead, err := sc.DeadLetters(ctx, -1)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 0 {
		t.Errorf("%d dead letters: %+v", len(dead), dead[0])
	}
}

// strand makes sure the killed worker dies with entries in hand: those it
// had read and not acknowledged, and, when it had none at that instant,
// the next few of a partition it still holds, read in its name (as if it
// had read them just before dying). Only XAUTOCLAIM by the partition's
// next owner delivers them. It returns how many entries the dead
// consumer has pending.
func (d *processDeployment) strand(t *testing.T, worker string) int {
	t.Helper()
	ctx := context.Background()
	rdb, sc := d.client(), d.streams()
	pending := func() int {
		n := 0
		for p := 0; p < 8; p++ {
			sum, err := rdb.XPending(ctx, sc.Keys.Inbound(p), streams.Group).Result()
			if err != nil {
				t.Fatalf("XPENDING partition %d: %v", p, err)
			}
			n += int(sum.Consumers[worker])
		}
		return n
	}
	if n := pending(); n > 0 {
		return n
	}
	for p := 0; p < 8; p++ {
		if owner, _, err := sc.LeaseHolder(ctx, p); err != nil || owner != worker {
			continue
		}
		_, _ = rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: streams.Group, Consumer: worker,
			Streams: []string{sc.Keys.Inbound(p), ">"}, Count: 5, Block: 200 * time.Millisecond}).Result()
	}
	n := pending()
	if n == 0 {
		t.Fatal("the killed worker has no entries pending: the claim path is not exercised")
	}
	return n
}

// TestWorkerCrash kills -9 one of three workers while 5,000 events flow
// through 50 rooms: every event must be delivered exactly once to every
// member, in order.
func TestWorkerCrash(t *testing.T) {
	modes(t, func(t *testing.T, cluster bool) {
		d := deploy(t, 2, 3, cluster)
		tr := newTraffic(t, []string{d.connectors[0].URL(), d.connectors[1].URL()}, 50, 2)
		done := make(chan struct{})
		go func() { defer close(done); tr.send(50, 150*time.Millisecond) }()
		for tr.sent.Load() < 1500 {
			time.Sleep(10 * time.Millisecond)
		}
		killed := time.Now()
		d.workers[0].Kill()
		dead := d.strand(t, d.workers[0].Name)
		rebalanced := time.Duration(0)
		for time.Since(killed) < 30*time.Second {
			if d.owned() == 8 {
				rebalanced = time.Since(killed)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		<-done
		tl := tr.settle(30 * time.Second)
		claimed := d.workers[1].Metric(context.Background(), "roomstream_worker_claimed_total") +
			d.workers[2].Metric(context.Background(), "roomstream_worker_claimed_total")
		t.Logf("worker killed after %d sends; partitions owned again after %s; entries it left pending: %d, claimed: %.0f", 1500, rebalanced, dead, claimed)
		t.Logf("%s", tl)
		if claimed < float64(dead) {
			t.Errorf("the killed worker left %d entries pending, the others claimed %.0f (XAUTOCLAIM)", dead, claimed)
		}
		if rebalanced == 0 {
			t.Error("partitions were not all owned again within 30s")
		}
		if tl.sent != 5000 || tl.accepted != 5000 || tl.lost != 0 || tl.duplicated != 0 || tl.reordered != 0 || tl.delivered != 10000 {
			t.Errorf("want 5000 accepted, 10000 deliveries, none lost, doubled or reordered; got %s", tl)
		}
		d.assertDrained(t)
	})
}

// connectorTimeout is ROOMSTREAM_CONNECTOR_TIMEOUT in deployments that
// do not set it (its default tag).
var connectorTimeout = func() time.Duration {
	var c connector.Config
	streams.Defaults(&c)
	return c.HeartbeatTTL
}()

// janitorSince returns when the deployment's current janitor took its
// lease, from the workers' logs.
func janitorSince(t *testing.T, d *processDeployment) time.Time {
	t.Helper()
	re := regexp.MustCompile(`time=(\S+) level=\S+ msg="janitor lease acquired"`)
	var since time.Time
	for deadline := time.Now().Add(15 * time.Second); since.IsZero(); time.Sleep(50 * time.Millisecond) {
		for _, w := range d.workers {
			for _, m := range re.FindAllStringSubmatch(w.Logs(), -1) {
				if at, err := time.Parse(time.RFC3339Nano, m[1]); err == nil && at.After(since) {
					since = at
				}
			}
		}
		if since.IsZero() && time.Now().After(deadline) {
			t.Fatal("no worker took the janitor lease within 15s")
		}
	}
	return since
}

// TestConnectorCrash kills -9 a connector: the other connectors' clients
// see user-left for its users within the bound, and the lock its user held
// is released after the grace period; its stream is deleted later.
func TestConnectorCrash(t *testing.T) {
	modes(t, func(t *testing.T, cluster bool) {
		d := deploy(t, 2, 1, cluster, "ROOMSTREAM_LOCK_GRACE", "3s", "ROOMSTREAM_RECOVERY_WINDOW", "5s")
		victim := users.Dial(t, d.connectors[0].URL(), "alice", "Alice")
		bob := users.Dial(t, d.connectors[1].URL(), "bob", "Bob")
		testkit.MustAck(t, victim, schemas.EventJoinRoom, map[string]string{"roomId": "r1"})
		testkit.MustAck(t, bob, schemas.EventJoinRoom, map[string]string{"roomId": "r1"})
		testkit.MustAck(t, victim, schemas.EventLockRoom, map[string]string{"roomId": "r1"})
		testkit.WaitFor(t, bob, schemas.EventRoomLocked, `"lockedBy":"alice"`)
		// Wait out the new janitor's grace (it declares no connector dead
		// in its first CONNECTOR_TIMEOUT) so that detection is measured in
		// steady state.
		time.Sleep(time.Until(janitorSince(t, d).Add(connectorTimeout)))

		killed := time.Now()
		d.connectors[0].Kill()
		// Detection: the heartbeat key expires at most CONNECTOR_TIMEOUT
		// after the kill, the janitor looks every REAP_INTERVAL, then a
		// worker applies the disconnect; 5 s of room for that and -race.
		bound := connectorTimeout + 5*time.Second
		ev := testkit.WaitForWithin(t, bound+15*time.Second, bob, schemas.EventUserLeft, `"userId":"alice"`)
		detect := ev.At.Sub(killed)
		var left schemas.UserLeftPayload
		if ev.Decode(&left); left.Reason != "connector_lost" {
			t.Errorf("user-left %s", ev.Args[0])
		}
		ev = testkit.WaitFor(t, bob, schemas.EventRoomUnlocked, `"reason":"lock holder left the room"`)
		release := ev.At.Sub(killed)
		var unlocked schemas.RoomUnlockedPayload
		ev.Decode(&unlocked)
		t.Logf("dead connector detected after %s (bound %s); lock released after %s (grace 3s)", detect, bound, release)
		if detect > bound {
			t.Errorf("detection took %s, bound is %s", detect, bound)
		}
		// The grace period runs on the server's clock, from the leave: its
		// timestamps, not when Bob's copies arrived, say whether it was kept.
		leftAt, err1 := time.Parse(time.RFC3339Nano, left.LeftAt)
		unlockedAt, err2 := time.Parse(time.RFC3339Nano, unlocked.UnlockedAt)
		if err1 != nil || err2 != nil {
			t.Fatalf("timestamps leftAt %q unlockedAt %q: %v %v", left.LeftAt, unlocked.UnlockedAt, err1, err2)
		}
		if held := unlockedAt.Sub(leftAt); held < 3*time.Second-time.Millisecond {
			t.Errorf("lock released %s after its holder left, before the 3 s grace ran out", held)
		}
		// The dead connector's outbound stream goes once the recovery window
		// is over; its socket keys at once.
		sc := d.streams()
		rdb := d.client()
		deadline := time.Now().Add(20 * time.Second)
		for rdb.Exists(context.Background(), sc.Keys.Outbound("conn1")).Val() == 1 {
			if time.Now().After(deadline) {
				t.Fatal("stream of the dead connector still there")
			}
			time.Sleep(200 * time.Millisecond)
		}
		if n := rdb.SCard(context.Background(), sc.Keys.UserSockets("alice")).Val(); n != 0 {
			t.Errorf("alice still has %d sockets", n)
		}
	})
}

// TestPoisonEvent: an entry that cannot be applied lands in the dead
// letters with its error and the partition keeps flowing; it can be listed
// and requeued with the CLI.
func TestPoisonEvent(t *testing.T) {
	d := deploy(t, 1, 1, false, "ROOMSTREAM_MAX_ATTEMPTS", "2")
	sc := d.streams()
	ctx := context.Background()
	a := users.Dial(t, d.connectors[0].URL(), "alice", "Alice")
	testkit.MustAck(t, a, schemas.EventJoinRoom, map[string]string{"roomId": "r1"})
	p := streams.Partition("r1", 8)
	// A lock-room whose payload is not JSON, and an envelope from a newer
	// version: neither can be applied.
	for _, vals := range [][]any{
		{"v", "1", "type", "lock-room", "room", "r1", "user", "alice", "name", "Alice", "socket", "x", "connector", "conn1", "data", "{not json", "at", "1"},
		{"v", "99", "type", "lock-room", "room", "r1", "at", "1"},
	} {
		if err := d.client().XAdd(ctx, &redis.XAddArgs{Stream: sc.Keys.Inbound(p), Values: vals}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// The partition keeps flowing: the next event is applied.
	start := time.Now()
	testkit.MustAck(t, a, schemas.EventLockRoom, map[string]string{"roomId": "r1"})
	t.Logf("event after two poison entries applied in %s", time.Since(start))
	dead, err := sc.DeadLetters(ctx, p)
	if err != nil || len(dead) != 2 {
		t.Fatalf("dead letters %+v %v, want 2", dead, err)
	}
	if !strings.Contains(dead[0].Error, "not json") && !strings.Contains(dead[0].Error, "invalid character") {
		t.Errorf("dead letter error %q", dead[0].Error)
	}
	env := d.cliEnv()
	list := exec.Command(d.connectors[0].Bin(), "deadletters", "list")
	list.Env = env
	out, err := list.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "lock-room") || !strings.Contains(string(out), "2 dead letter(s)") {
		t.Errorf("deadletters list: %v\n%s", err, out)
	}
	requeue := exec.Command(d.connectors[0].Bin(), "deadletters", "requeue", "-partition", fmt.Sprint(p), "-id", dead[1].ID)
	requeue.Env = env
	if out, err := requeue.CombinedOutput(); err != nil || !strings.Contains(string(out), "requeued") {
		t.Errorf("deadletters requeue: %v\n%s", err, out)
	}
	// Requeued, it fails again and comes back to the dead letters as a
	// new letter; the first stays, marked as requeued.
	deadline := time.Now().Add(15 * time.Second)
	for {
		dead, _ = sc.DeadLetters(ctx, p)
		if len(dead) == 3 && dead[1].Requeued != "" && dead[2].Source == dead[1].Requeued && dead[2].Values["requeued_from"] == dead[1].Source {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("requeued poison entry not dead-lettered again: %+v", dead)
		}
		time.Sleep(100 * time.Millisecond)
	}
	again := exec.Command(d.connectors[0].Bin(), "deadletters", "requeue", "-partition", fmt.Sprint(p), "-id", dead[1].ID)
	again.Env = env
	if out, err := again.CombinedOutput(); err == nil || !strings.Contains(string(out), "already requeued") {
		t.Errorf("requeue twice: %v\n%s", err, out)
	}
}

// TestLostAppendReply: Redis stores a client's event, then the connection
// breaks before the reply arrives, and the Redis client appends the event
// again on a new connection. The room applies it once: the other member
// sees every progress report once and in order, and the audit log shows
// the second append as "repeated".
func TestLostAppendReply(t *testing.T) {
	d := deploy(t, 0, 1, false)
	px := harness.StartProxy(t, d.redis.Addr())
	conn := harness.StartConnector(t, "conn1", d.env.With("ROOMSTREAM_REDIS_URL", "redis://"+px.Addr()))
	if err := conn.WaitReady(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	alice := users.Dial(t, conn.URL(), "alice", "Alice")
	bob := users.Dial(t, conn.URL(), "bob", "Bob")
	testkit.MustAck(t, alice, schemas.EventJoinRoom, map[string]string{"roomId": "r1"})
	testkit.MustAck(t, bob, schemas.EventJoinRoom, map[string]string{"roomId": "r1"})
	testkit.MustAck(t, alice, schemas.EventFileUploadStarted, map[string]any{"fileId": "f1", "fileName": "a.pdf", "roomId": "r1", "size": 20, "mimeType": "application/pdf"})
	for i := 1; i <= 20; i++ {
		if i == 10 {
			px.LoseReply("xadd")
		}
		testkit.MustAck(t, alice, schemas.EventFileUploadProgress, map[string]any{"fileId": "f1", "uploadId": "f1", "fileName": "a.pdf",
			"roomId": "r1", "bytesUploaded": i, "totalBytes": 20, "percentage": float64(i * 5)})
	}
	if px.Lost() != 1 {
		t.Fatalf("the proxy lost %d replies, want 1", px.Lost())
	}
	// Bob's progress events, up to the last one.
	var got []int
	for len(got) == 0 || got[len(got)-1] != 20 {
		var p schemas.FileUploadProgressPayload
		if err := testkit.WaitFor(t, bob, schemas.EventFileUploadProgress).Decode(&p); err != nil {
			t.Fatal(err)
		}
		got = append(got, int(p.BytesUploaded))
	}
	want := make([]int, 20)
	for i := range want {
		want[i] = i + 1
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("bob saw progress %v, want each of 1..20 once and in order", got)
	}
	// The event is twice in the log (else the test proved nothing), with
	// one number.
	entries, err := d.client().XRange(context.Background(), d.streams().Keys.Inbound(streams.Partition("r1", 8)), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	seqs := map[string]int{}
	for _, e := range entries {
		if e.Values["type"] == schemas.EventFileUploadProgress {
			seqs[fmt.Sprint(e.Values["origin"], "/", e.Values["seq"])]++
		}
	}
	twice := 0
	for _, n := range seqs {
		if n == 2 {
			twice++
		}
	}
	if len(seqs) != 20 || twice != 1 {
		t.Fatalf("inbound log: %d numbered progress events, %d appended twice; want 20 and 1", len(seqs), twice)
	}
	tl := exec.Command(conn.Bin(), "replay", "timeline", "-room", "r1", "-format", "jsonl")
	tl.Env = d.cliEnv()
	out, err := tl.Output()
	if err != nil {
		t.Fatalf("replay timeline: %v", err)
	}
	if n := strings.Count(string(out), `"outcome":"repeated"`); n != 1 {
		t.Errorf("timeline shows %d repeated events, want 1:\n%s", n, out)
	}
	d.assertDrained(t)
}

// TestRedisRestart restarts Redis (AOF, fsync always) mid-traffic:
// processes reconnect on their own and carry on; nothing acknowledged is
// lost.
func TestRedisRestart(t *testing.T) {
	d := deploy(t, 2, 2, false)
	tr := newTraffic(t, []string{d.connectors[0].URL(), d.connectors[1].URL()}, 10, 2)
	done := make(chan struct{})
	go func() { defer close(done); tr.send(60, 100*time.Millisecond) }()
	for tr.sent.Load() < 300 {
		time.Sleep(10 * time.Millisecond)
	}
	d.redis.Kill()
	time.Sleep(time.Second)
	restarted := time.Now()
	d.redis.Start()
	<-done
	tl := tr.settle(30 * time.Second)
	t.Logf("Redis down for 1s; %s", tl)
	if tl.lost != 0 || tl.duplicated != 0 || tl.reordered != 0 {
		t.Errorf("after a Redis restart: %s", tl)
	}
	// Redis is away 1 s, well within the 5 s connectors keep appending
	// for: every event is accepted (none refused unavailable) and reaches
	// both members of its room.
	if tl.sent != 1200 || tl.accepted != 1200 || tl.delivered != 2400 {
		t.Errorf("want 1200 of 1200 events accepted and 2400 deliveries across a 1 s Redis restart: %s", tl)
	}
	for _, p := range append(d.connectors, d.workers...) {
		if err := p.WaitReady(10 * time.Second); err != nil {
			t.Errorf("%s not ready %s after Redis came back: %v", p.Name, time.Since(restarted), err)
		}
	}
	d.assertDrained(t)
}

// TestGracefulShutdown: SIGTERM on a connector sends its clients away with
// a reconnectable close and exits in time; SIGTERM on a worker gives its
// leases up at once, so another worker owns them well before they expire.
func TestGracefulShutdown(t *testing.T) {
	d := deploy(t, 2, 2, false, "ROOMSTREAM_LEASE_TTL", "10s")
	a := users.Dial(t, d.connectors[0].URL(), "alice", "Alice")
	b := users.Dial(t, d.connectors[1].URL(), "bob", "Bob")
	testkit.MustAck(t, a, schemas.EventJoinRoom, map[string]string{"roomId": "r1"})
	testkit.MustAck(t, b, schemas.EventJoinRoom, map[string]string{"roomId": "r1"})

	took := d.connectors[0].Stop(15 * time.Second)
	select {
	case <-a.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("client of the stopped connector still connected")
	}
	if a.Reason() != "transport close" {
		t.Errorf("client saw %q, want a reconnectable \"transport close\"", a.Reason())
	}
	t.Logf("connector exited %s after SIGTERM", took)

	// Released, its partitions are taken by the other worker's next
	// balance round (every third of the TTL); kept, they would expire
	// two thirds of the TTL after their last renewal at the earliest.
	stopped := time.Now()
	d.workers[0].Stop(15 * time.Second)
	for d.owned() != 8 {
		if time.Since(stopped) > 5*time.Second {
			t.Fatalf("partitions of the stopped worker not taken within 5s (lease TTL 10s, renewed every 3.3s): owned %d", d.owned())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("worker stopped; its partitions owned by the other worker after %s (lease TTL 10s)", time.Since(stopped))
	testkit.MustAck(t, b, schemas.EventLockRoom, map[string]string{"roomId": "r1"})
}
