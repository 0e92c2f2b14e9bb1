package workers

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomstream/roomstream/infra/testredis"
)

// TestLatencyHops: every entry a worker applies is timed from its accept
// time to its read (queued) and to its effects written (applied), once
// each, and the outbound entries carry the accept time on to the
// connectors (delivered).
func TestLatencyHops(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, c := runWorkerWith(t, testredis.Start(t, nil).Client(), sharedConfig(2), &Options{Registerer: reg})
	s := newSender(t, c, 3)
	for n := 1; n <= 5; n++ {
		s.progress(n)
	}
	s.waitAll(10 * time.Second)
	entries := uint64(3 + 3*5)
	var queued, applied uint64
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		queued, applied = hopCount(t, reg, "queued"), hopCount(t, reg, "applied")
		if queued >= entries && applied >= entries || time.Now().After(deadline) {
			break
		}
	}
	if queued != entries || applied != entries {
		t.Errorf("%d entries applied; hops observed: queued %d, applied %d", entries, queued, applied)
	}
	msgs, err := c.OutboundRange(t.Context(), "c1", "-", "+", 0)
	if err != nil || len(msgs) == 0 {
		t.Fatalf("outbound entries: %d, %v", len(msgs), err)
	}
	if _, ok := msgs[0].Values["at"]; !ok {
		t.Errorf("an outbound entry without its event's accept time: %v", msgs[0].Values)
	}
}

// hopCount is the number of observations of one hop of
// roomstream_event_latency_seconds in reg.
func hopCount(t *testing.T, reg *prometheus.Registry, hop string) uint64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "roomstream_event_latency_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			if m.GetLabel()[0].GetValue() == hop {
				return m.GetHistogram().GetSampleCount()
			}
		}
	}
	return 0
}
