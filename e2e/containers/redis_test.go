package containers_test

import (
	"testing"
	"time"

	"github.com/roomstream/roomstream/e2e/containers"
	"github.com/roomstream/roomstream/e2e/testkit"
	"github.com/roomstream/roomstream/schemas"
)

// TestRedisRestart kills the Redis container (SIGKILL) mid-traffic and
// starts it again from its append-only file (appendfsync always). The
// connectors and workers reconnect on their own and carry on, clients stay
// connected; nothing that was acknowledged is lost, nothing accepted is
// delivered twice or out of order.
func TestRedisRestart(t *testing.T) {
	need(t)
	began := time.Now()
	c := containers.Start(t, nil)
	conns := []*containers.Proc{c.AddConnector(), c.AddConnector()}
	c.AddWorker()
	c.AddWorker()
	c.WaitPartitionsOwned()
	ctx := testkit.Within(t, 3*time.Minute)
	rooms := roomNames("restart", 8)
	js := startJSMember(ctx, t, c, conns[1].URL(), "js-0", rooms[0])

	tr := newTraffic(t, c, 200*time.Millisecond)
	tr.add("go", 48, rooms, func(i int) func(string) string { return fixed(c, conns[i%2]) })
	js.start(300 * time.Millisecond)
	testkit.WaitUntil(t, "every Go client has events acknowledged", time.Minute, func() bool { return tr.minAcked() >= 3 })

	c.RestartRedis(time.Second)
	// Every process is ready again by itself.
	for _, p := range append(c.Connectors(), c.Workers()...) {
		waitReadyz(t, p, 30*time.Second)
	}
	c.WaitPartitionsOwned()
	// The traffic carries on: every client gets new events acknowledged.
	before := tr.minAcked()
	testkit.WaitUntil(t, "traffic flowing after the restart", time.Minute, func() bool { return tr.minAcked() >= before+5 })

	js.halt()
	tally := tr.verify(ctx, "redis-restart", began, js.receiver)
	s := tr.summary()
	// The traffic carried on after the restart: the last events of every
	// client were acknowledged.
	for _, p := range tr.ps {
		r := p.Report()
		last := int64(0)
		if n := len(r.Acked); n > 0 {
			last = r.Acked[n-1].Bytes
		}
		if last < r.Sent-2 {
			t.Errorf("%s: last acknowledged seq %d of %d", p.M.User, last, r.Sent)
		}
	}
	if s.reconnects != 0 {
		t.Logf("%d clients reconnected during the restart", s.reconnects)
	}
	for _, p := range tr.ps {
		for _, ev := range p.M.Events() {
			if ev.Name == schemas.EventUserLeft {
				t.Errorf("%s got user-left %s", p.M.User, ev.Args[0])
			}
		}
	}
	jsSent, jsAccepted := checkJSSent(t, c, []*jsMember{js})
	t.Logf("design JS client: %d progress events sent, %d accepted", jsSent, jsAccepted)
	_ = tally
}

func waitReadyz(t *testing.T, p *containers.Proc, d time.Duration) {
	t.Helper()
	if err := testkit.WaitReady(testkit.Within(t, d), p.URL()+"/readyz", nil); err != nil {
		t.Fatalf("%s not ready %s after the Redis restart: %v", p.Name, d, err)
	}
}
