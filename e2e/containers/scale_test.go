package containers_test

import (
	"testing"
	"time"

	"github.com/roomstream/roomstream/e2e/containers"
	"github.com/roomstream/roomstream/e2e/testkit"
)

// TestScaleOutUnderLoad starts with 1 connector and 1 worker, and while
// 200 clients exchange progress events adds 2 connectors and 3 workers:
// partitions move between workers mid-traffic, the newcomers connect to
// the new connectors and join the same rooms. Then it scales back in
// gracefully (SIGTERM): one connector drains its clients, which recover
// their sessions on the others, and two workers hand their partitions
// over. No event may be lost or duplicated, and every member of a room
// sees its events in one order.
func TestScaleOutUnderLoad(t *testing.T) {
	need(t)
	began := time.Now()
	c := containers.Start(t, nil)
	c1 := c.AddConnector()
	w1 := c.AddWorker()
	c.WaitPartitionsOwned()
	rooms := roomNames("scale", 20)
	tr := newTraffic(t, c, 250*time.Millisecond)

	first := tr.add("early", 120, rooms, func(int) func(string) string { return fixed(c, c1) })
	t.Logf("120 clients on %s exchanging events", c1.Name)
	testkit.WaitUntil(t, "every early client has events acknowledged", time.Minute, func() bool { return tr.minAcked() >= 3 })

	c2, c3 := c.AddConnector(), c.AddConnector()
	for i := 0; i < 3; i++ {
		c.AddWorker()
		time.Sleep(500 * time.Millisecond)
	}
	newConns := []*containers.Proc{c2, c3}
	tr.add("late", 80, rooms, func(i int) func(string) string { return fixed(c, newConns[i%2]) })
	t.Logf("80 more clients on %s and %s", c2.Name, c3.Name)

	// The new workers take partitions over: the balancer runs every third
	// of a lease (LEASE_TTL 5 s) and moves a few partitions per round.
	var owned map[string]int
	took := testkit.WaitUntil(t, "partitions spread over the new workers", 6*defaultLeaseTTL, func() bool {
		owned = owners(c)
		return len(owned) >= 3 && owned[w1.Name] < c.Partitions()
	})
	t.Logf("partition owners after scale-out (%s): %v", took.Round(100*time.Millisecond), owned)
	testkit.WaitUntil(t, "every client has events acknowledged", time.Minute, func() bool { return tr.minAcked() >= 6 })
	onNew := 0
	for _, p := range tr.ps {
		if p.M.Base() != c1.URL() {
			onNew++
		}
	}
	if onNew != 80 || len(first) != 120 {
		t.Errorf("%d clients on the new connectors", onNew)
	}

	// Scale back in while the traffic goes on.
	ws := c.Workers()
	c.Stop(c3)
	c.Stop(ws[1])
	c.Stop(ws[2])
	// The drained connector's 40 clients reconnect elsewhere (its drain
	// lasts DRAIN_TIMEOUT, 10 s, at most).
	testkit.WaitUntil(t, "the drained connector's clients reconnected", 30*time.Second, func() bool { return tr.summary().reconnects >= 40 })
	before := tr.minAcked()
	testkit.WaitUntil(t, "traffic flowing after the scale-in", time.Minute, func() bool { return tr.minAcked() >= before+3 })

	tally := tr.verify(testkit.Within(t, 2*time.Minute), "scale-out-and-in", began)
	s := tr.summary()
	if s.reconnects < 40 {
		t.Errorf("%d clients reconnected; the drained connector held 40", s.reconnects)
	}
	for _, p := range tr.ps {
		for _, ev := range p.M.Events() {
			if ev.Name == "user-left" {
				t.Errorf("%s got user-left %s", p.M.User, ev.Args[0])
				break
			}
		}
	}
	if tally.Expected < 20000 {
		t.Errorf("only %d deliveries expected: too little traffic to mean anything", tally.Expected)
	}
}
