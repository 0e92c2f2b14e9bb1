package e2e

import (
	"testing"
	"time"
)

// TestClusterFailover kills a Redis Cluster master mid-traffic and lets its
// replica take over. It shows what is and is not lost: with asynchronous
// replication (the default) writes the master acknowledged but had not
// yet sent to its replica can vanish; with ROOMSTREAM_DURABLE_REPLICAS=1
// every accepted event, room change and delivery is on a replica before a
// client hears of it, so nothing acknowledged is lost; while a shard has no
// replica (until the old master rejoins) its writes are refused or wait.
// Events refused while the slots were moving (unavailable) were never
// accepted.
func TestClusterFailover(t *testing.T) {
	for _, tc := range []struct {
		name    string
		durable string
	}{{"async", "0"}, {"durable", "1"}} {
		t.Run(tc.name, func(t *testing.T) {
			d := deploy(t, 2, 2, true, "ROOMSTREAM_DURABLE_REPLICAS", tc.durable, "ROOMSTREAM_DURABLE_TIMEOUT", "2s")
			tr := newTraffic(t, []string{d.connectors[0].URL(), d.connectors[1].URL()}, 10, 2)
			done := make(chan struct{})
			go func() { defer close(done); tr.send(80, 50*time.Millisecond) }()
			for tr.sent.Load() < 400 {
				time.Sleep(10 * time.Millisecond)
			}
			start := time.Now()
			victim, err := d.cluster.KillMasterAndFailover(0)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("killed master %s; its replica took over after %s", victim.Addr(), time.Since(start))
			// The old master comes back as the new master's replica (in
			// durable mode, writes to that shard wait for it).
			d.cluster.Rejoin(victim)
			t.Logf("old master back as a replica after %s", time.Since(start))
			<-done
			tl := tr.settle(30 * time.Second)
			t.Logf("durable=%s: %s", tc.durable, tl)
			if tl.duplicated != 0 || tl.reordered != 0 {
				t.Errorf("duplicates or reordering across a failover: %s", tl)
			}
			if tc.durable == "1" && tl.lost != 0 {
				t.Errorf("durable mode lost %d acknowledged deliveries", tl.lost)
			}
			if tl.accepted < tl.sent/2 {
				t.Errorf("the system did not carry on after the failover: %s", tl)
			}
			for _, p := range append(d.connectors, d.workers...) {
				if err := p.WaitReady(20 * time.Second); err != nil {
					t.Errorf("%s not ready after the failover: %v", p.Name, err)
				}
			}
		})
	}
}
