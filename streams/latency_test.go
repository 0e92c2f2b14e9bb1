package streams

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestLatency: the hops land in one histogram, shared by every
// NewLatency of a registry (dev runs a connector and a worker in one
// process); a time before the accept time (clocks of two machines) counts
// as zero, and an unknown accept time is not counted.
func TestLatency(t *testing.T) {
	reg := prometheus.NewRegistry()
	worker, conn := NewLatency(reg), NewLatency(reg)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	worker.Queued.Since(at, at.Add(300*time.Microsecond))
	worker.Applied.Since(at, at.Add(-time.Second))
	conn.Delivered.SinceN(at, at.Add(20*time.Millisecond), 3)
	conn.Delivered.Since(time.Time{}, at)
	fams, err := reg.Gather()
	if err != nil || len(fams) != 1 {
		t.Fatalf("gathered %d families: %v", len(fams), err)
	}
	type got struct {
		count uint64
		sum   float64
	}
	hops := map[string]got{}
	for _, m := range fams[0].GetMetric() {
		h := m.GetHistogram()
		hops[m.GetLabel()[0].GetValue()] = got{h.GetSampleCount(), h.GetSampleSum()}
		if b := h.GetBucket(); b[0].GetUpperBound() != 100e-6 || b[len(b)-1].GetUpperBound() != 10 {
			t.Errorf("buckets from %g to %g s, want 100 µs to 10 s", b[0].GetUpperBound(), b[len(b)-1].GetUpperBound())
		}
	}
	want := map[string]got{"queued": {1, 300e-6}, "applied": {1, 0}, "delivered": {3, 60e-3}}
	for hop, w := range want {
		g := hops[hop]
		if g.count != w.count || g.sum < w.sum-1e-9 || g.sum > w.sum+1e-9 {
			t.Errorf("hop %s: %d observations summing to %g s, want %d summing to %g", hop, g.count, g.sum, w.count, w.sum)
		}
	}
}
