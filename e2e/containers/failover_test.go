package containers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roomstream/roomstream/connector"
	"github.com/roomstream/roomstream/e2e/containers"
	"github.com/roomstream/roomstream/e2e/harness"
	"github.com/roomstream/roomstream/e2e/testkit"
	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// TestKillWorkerThenConnector kills (SIGKILL) a worker mid-traffic, then a
// connector. The dead worker's partitions move to the others with nothing
// lost or applied twice; the dead connector's clients reconnect to the
// other connectors and recover their sessions: Go clients dial another
// connector's port, the design's JavaScript client reconnects by itself
// through a TCP load balancer. Every event accepted before or after the
// kills reaches every member exactly once, in the room's order, and nobody
// is reported as having left.
func TestKillWorkerThenConnector(t *testing.T) {
	var cfg connector.Config
	streams.Defaults(&cfg)
	connectorTimeout := cfg.HeartbeatTTL // ROOMSTREAM_CONNECTOR_TIMEOUT's default
	need(t)
	began := time.Now()
	// The victim's clients must recover before the reaper declares it
	// dead: its heartbeat key expires between 2/3 of CONNECTOR_TIMEOUT and
	// all of it after the kill. The default (10 s) leaves a busy machine
	// 6.7 s for reconnecting; 3 s left it 2.
	c := containers.Start(t, nil)
	conns := []*containers.Proc{c.AddConnector(), c.AddConnector(), c.AddConnector()}
	ws := []*containers.Proc{c.AddWorker(), c.AddWorker(), c.AddWorker()}
	c.WaitPartitionsOwned()
	victim := conns[0]

	// The load balancer sends the design clients to the victim first, and
	// to any live connector once it is gone.
	var pinned atomic.Bool
	pinned.Store(true)
	lb := harness.NewBalancer(t, func() []string {
		if pinned.Load() && victim.Live() {
			return []string{victim.Addr()}
		}
		var out []string
		for _, p := range c.Connectors() {
			out = append(out, p.Addr())
		}
		return out
	})
	rooms := roomNames("failover", 10)
	ctx := testkit.Within(t, 3*time.Minute)
	var js []*jsMember
	for i, room := range rooms[:2] {
		user := fmt.Sprintf("js-%d", i)
		js = append(js, startJSMember(ctx, t, c, lb.URL(), user, room))
	}
	pinned.Store(false)

	tr := newTraffic(t, c, 200*time.Millisecond)
	tr.add("go", 60, rooms, func(i int) func(string) string { return fixed(c, conns[i%3]) })
	for _, j := range js {
		j.start(300 * time.Millisecond)
	}
	testkit.WaitUntil(t, "every Go client has events acknowledged", time.Minute, func() bool { return tr.minAcked() >= 3 })

	c.Kill(ws[0])
	// Its partitions move once their leases expire (LEASE_TTL 5 s) and
	// the others' balancer (every third of it) takes them.
	took := testkit.WaitUntil(t, "the dead worker's partitions owned by the others", 6*defaultLeaseTTL, func() bool {
		held := 0
		for w, n := range owners(c) {
			if w != ws[0].Name {
				held += n
			}
		}
		return held == c.Partitions()
	})
	t.Logf("the dead worker's partitions owned again after %s", took.Round(100*time.Millisecond))
	before := tr.minAcked()
	testkit.WaitUntil(t, "traffic flowing after the worker's death", time.Minute, func() bool { return tr.minAcked() >= before+3 })

	c.Kill(victim)
	took = testkit.WaitUntil(t, "the victim's clients reconnected", connectorTimeout+30*time.Second, func() bool {
		for _, j := range js {
			if j.recoveredOnce() != nil {
				return false
			}
		}
		return tr.summary().reconnects >= 20
	})
	t.Logf("the victim's clients reconnected within %s (connector timeout %s)", took.Round(100*time.Millisecond), connectorTimeout)
	// The reaper has declared the victim dead (it is no longer a
	// registered connector) before the check that nobody left.
	reg := streams.NewKeys("").Connectors()
	took = testkit.WaitUntil(t, "the victim reaped", connectorTimeout+30*time.Second, func() bool {
		return !c.RDB().SIsMember(context.Background(), reg, victim.Name).Val()
	})
	t.Logf("the victim reaped %s after its clients reconnected", took.Round(100*time.Millisecond))
	before = tr.minAcked()
	testkit.WaitUntil(t, "traffic flowing after the connector's death", time.Minute, func() bool { return tr.minAcked() >= before+3 })

	for _, j := range js {
		j.halt()
	}
	var extras []extra
	for _, j := range js {
		extras = append(extras, j.receiver)
	}
	tally := tr.verify(ctx, "kill-worker-then-connector", began, extras...)

	// The victim's clients moved and recovered.
	s := tr.summary()
	if s.reconnects < 20 {
		t.Errorf("%d Go clients reconnected; the victim held 20", s.reconnects)
	}
	for _, j := range js {
		if err := j.recoveredOnce(); err != nil {
			t.Error(err)
		}
	}
	// Nobody left: every socket recovered before the reaper declared the
	// victim dead.
	for _, p := range tr.ps {
		for _, ev := range p.M.Events() {
			if ev.Name == schemas.EventUserLeft {
				t.Errorf("%s got user-left %s", p.M.User, ev.Args[0])
			}
		}
	}
	jsSent, jsAccepted := checkJSSent(t, c, js)
	t.Logf("design JS clients: 2 via the load balancer, %d progress events sent, %d accepted; all clients %d", jsSent, jsAccepted, s.clients+len(js))
	_ = tally
}

// checkJSSent checks that what the design clients reported was accepted:
// all of it but what was on the wire of a connection that died (the
// client buffers what it emits while disconnected) and what was refused
// as temporary, and that nothing was refused for any other reason.
func checkJSSent(t *testing.T, c *containers.Cluster, js []*jsMember) (sent, accepted int) {
	t.Helper()
	truth, err := c.ReadTruth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range js {
		n, a := int(j.sent.Load()), 0
		for i := int64(1); i <= int64(n); i++ {
			if truth.Accepted(j.room, testkit.Key{User: j.user, Upload: "up-" + j.user, Bytes: i}) {
				a++
			}
		}
		// A report the connector could not store within its append window
		// (Redis away longer than that) comes back as a temporary error
		// event: allowed, like the Go clients' temporary refusals, as long
		// as the rest was accepted. Any other error event is a failure.
		temporary := 0
		for _, l := range j.j.Lines() {
			if l.Kind != "event" || l.Name != schemas.EventError {
				continue
			}
			var e schemas.Error
			if len(l.Args) > 0 && json.Unmarshal(l.Args[0], &e) == nil && e.Temporary {
				temporary++
				continue
			}
			t.Errorf("%s got an error event: %s", j.user, l.Args)
		}
		if a < n-5-temporary || n == 0 {
			t.Errorf("%s: %d of %d progress events accepted (%d refused as temporary)", j.user, a, n, temporary)
		}
		if temporary > 0 {
			t.Logf("%s: %d progress events refused as temporary", j.user, temporary)
		}
		sent += n
		accepted += a
	}
	return sent, accepted
}

// jsMember is the design client in a room, reporting progress with the
// design's reportUploadProgress.
type jsMember struct {
	t    *testing.T
	j    *containers.JSClient
	user string
	room string
	sent atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func startJSMember(ctx context.Context, t *testing.T, c *containers.Cluster, url, user, room string) *jsMember {
	t.Helper()
	j := containers.StartJS(t, url, user, user, c.Token(user, user))
	if _, err := j.WaitFor(ctx, "connect", func(l containers.JSLine) bool { return l.Kind == "connect" }); err != nil {
		t.Fatal(err)
	}
	m := &jsMember{t: t, j: j, user: user, room: room, stop: make(chan struct{}), done: make(chan struct{})}
	raw, err := j.Emit(ctx, schemas.EventJoinRoom, map[string]string{"roomId": room, "userId": user})
	var a schemas.Ack
	if err != nil || json.Unmarshal(raw, &a) != nil || !a.OK {
		t.Fatalf("%s join: %s %v", user, raw, err)
	}
	raw, err = j.Emit(ctx, schemas.EventFileUploadStarted, map[string]any{"fileId": "up-" + user, "uploadId": "up-" + user,
		"fileName": user + ".bin", "roomId": room, "userId": user, "size": 1 << 30})
	if err != nil || json.Unmarshal(raw, &a) != nil || !a.OK {
		t.Fatalf("%s upload start: %s %v", user, raw, err)
	}
	j.SetFile(user + ".bin")
	j.SetRoom(room)

	return m
}

func (m *jsMember) start(interval time.Duration) {
	go func() {
		defer close(m.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-tick.C:
			}
			n := m.sent.Add(1)
			m.j.Progress("up-"+m.user, "up-"+m.user, n, 1<<30)
		}
	}()
}

// halt stops the reports and returns once the last of them is in the log
// (or refused): a socket's events are appended in order, so the ack of an
// event sent after them, which only a worker can give, comes after they
// are. Without this the truth read next could miss a report still on its
// way, which members would then receive as unexpected.
func (m *jsMember) halt() {
	close(m.stop)
	<-m.done
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	raw, err := m.j.Emit(ctx, schemas.EventLockRoom, map[string]string{"roomId": "never-joined-" + m.user, "userId": m.user})
	var a schemas.Ack
	if err != nil || json.Unmarshal(raw, &a) != nil || a.OK || a.Error == nil || a.Error.Code != schemas.CodeNotMember {
		m.t.Errorf("%s: the closing lock-room should be refused as not_member: %s %v", m.user, raw, err)
	}
}

func (m *jsMember) receiver() testkit.Receiver {
	return testkit.Receiver{Label: m.user + " (design JS)", SID: m.j.SocketID(), Room: m.room, Got: containers.JSProgressOf(m.j.Lines(), m.room)}
}

// recoveredOnce checks the client was dropped and came back recovered.
func (m *jsMember) recoveredOnce() error {
	var connects, recovered, drops int
	for _, l := range m.j.Lines() {
		switch l.Kind {
		case "connect":
			connects++
			if l.Recovered {
				recovered++
			}
		case "disconnect":
			drops++
		}
	}
	if drops == 0 || connects < 2 || recovered != connects-1 {
		return fmt.Errorf("%s: %d drops, %d connects, %d recovered; want a drop and a recovered reconnection", m.user, drops, connects, recovered)
	}
	return nil
}
