package bench

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestPeerFlags(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		sizes []int
		pin   bool
	}{
		{"peer", nil, []int{10, 100}, true},
		{"peer", []string{"--room-size", "50"}, []int{50}, true},
		{"peer", []string{"--room-sizes", "100,10", "--pin=false"}, []int{100, 10}, false},
		{"max", nil, nil, true},
		{"seed", nil, nil, false},
	} {
		p, _, _, err := parseFlags(tc.name, tc.args)
		if err != nil {
			t.Fatalf("%s %v: %v", tc.name, tc.args, err)
		}
		if !slices.Equal(p.RoomSizes, tc.sizes) || p.Pin != tc.pin || (len(tc.sizes) > 0 && p.RoomSize != tc.sizes[0]) {
			t.Errorf("%s %v: room sizes %v (room size %d), pin %v; want %v, pin %v", tc.name, tc.args, p.RoomSizes, p.RoomSize, p.Pin, tc.sizes, tc.pin)
		}
	}
	for _, bad := range []string{"10,x", "1", ""} {
		if _, _, _, err := parseFlags("peer", []string{"--room-sizes", bad}); err == nil {
			t.Errorf("--room-sizes %q: no error", bad)
		}
	}
}

// peerReport makes a report of max whose steps at the given rates passed
// (negative: failed), each costing what a stack of these roles would.
func peerReport(target string, size int, rates ...float64) *Report {
	r := &Report{Scenario: "max", Target: target, Config: RunConfig{RoomSize: size}, Machine: Machine{Cores: 2}}
	roles := []string{"redis", "connector-0", "worker-0"}
	if target == "node" {
		roles = []string{"redis", "node-0", "node-1"}
	}
	for _, rate := range rates {
		res := StepResult{Rate: abs(rate), SentPerSec: abs(rate), DeliveredPerSec: abs(rate) * float64(size-1), Pass: rate > 0,
			LatencyMs: Quantiles{P99: 20}, GeneratorCores: 0.3, GeneratorProcs: 1}
		for _, role := range roles {
			res.Servers = append(res.Servers, ProcUsage{Label: role, CPUCores: 0.3})
		}
		res.Cost = stepCost(&res, []int{1}, []int{0}, 2)
		r.Steps = append(r.Steps, res)
	}
	for i := range r.Steps {
		if r.Steps[i].Pass {
			r.Best = &r.Steps[i]
		}
	}
	r.Pinning = &Pinning{Pinned: true, Note: "pinned: servers on core 1, generator on core 0"}
	return r
}

func abs(x float64) float64 { return max(x, -x) }

func TestPeerTable(t *testing.T) {
	rs10, node10 := peerReport("roomstream", 10, 1000, 2000, 3000, 4000, -5000), peerReport("node", 10, 1000, 2000, -3000, 2500)
	rs100, node100 := peerReport("roomstream", 100, 100, -200), peerReport("node", 100, -100)
	commonLoad(rs10, node10)
	commonLoad(rs100, node100)
	if rs10.Common == nil || rs10.Common.Rate != 2000 || node10.Common.Rate != 2000 {
		t.Fatalf("common load %+v / %+v, want the steps at 2000/s (2500 passed for Node only)", rs10.Common, node10.Common)
	}
	if rs100.Common != nil || node100.Common != nil {
		t.Errorf("rooms of 100: a common load, but Node passed no step")
	}
	var b bytes.Buffer
	printPeerTable(&b, []*Report{rs10, node10, rs100, node100})
	s := b.String()
	for _, want := range []string{
		"Results on this machine: 2 cores",
		"### Rooms of 10 (9 deliveries per inbound event)",
		"| max inbound msg/s held per server core (p99 < limit, 0 lost, duplicated or reordered) | 4000 | 2500 | 1.60 |",
		"| max deliveries/s held per server core | 36000 | 22500 | 1.60 |",
		"| common load: inbound msg/s (the highest step both passed) | 2000 | 2000 | 1.00 |",
		// 0.9 cores of servers over 2000 events/s, at the common load.
		"| … server CPU µs per inbound event (lower is better) | 450.0 | 450.0 | 1.00 |",
		"| roomstream | connector-0 | 75.0 / 8.33 (0.30) | 150.0 / 16.67 (0.30) |",
		"| Node stack | node-1 | 120.0 / 13.33 (0.30) | 150.0 / 16.67 (0.30) |",
		"| roomstream | load generator | 75.0 / 8.33 (0.30) |",
		"### Rooms of 100 (99 deliveries per inbound event)",
		"| max deliveries/s held per server core | 9900 | – | – |",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("table lacks %q:\n%s", want, s)
		}
	}
}

// TestFinishNamesCharts: with several room sizes, each stack's chart of
// each size has a file of its own.
func TestFinishNamesCharts(t *testing.T) {
	dir := t.TempDir()
	p := &Params{Chart: filepath.Join(dir, "peer.svg"), JSON: filepath.Join(dir, "peer.json"), Out: io.Discard}
	reports := []*Report{peerReport("roomstream", 10, 1000), peerReport("node", 10, 1000),
		peerReport("roomstream", 100, 100), peerReport("node", 100, 100)}
	if err := finish(p, reports); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"peer-roomstream-r10.svg", "peer-node-r10.svg", "peer-roomstream-r100.svg", "peer-node-r100.svg", "peer.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("no %s: %v", f, err)
		}
	}
}
