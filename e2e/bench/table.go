package bench

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// printTable prints a Markdown table: scenario, figure, roomstream, Node
// stack, ratio.
func printTable(w io.Writer, reports []*Report) {
	find := func(scenario, target string) *Report {
		for _, r := range reports {
			if r != nil && r.Scenario == scenario && r.Target == target {
				return r
			}
		}
		return nil
	}
	fmt.Fprintf(w, "\n%s\n\n", machineLine(reports))
	fmt.Fprintln(w, "| scenario | figure | roomstream | Node stack | ratio roomstream ÷ Node |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	row := func(scenario, figure string, get func(*Report) (float64, bool), format string, higherBetter bool) {
		a, b := find(scenario, "roomstream"), find(scenario, "node")
		if a == nil && b == nil {
			return
		}
		cell := func(r *Report) (string, float64, bool) {
			if r == nil {
				return "–", 0, false
			}
			v, ok := get(r)
			if !ok {
				return "–", 0, false
			}
			return fmt.Sprintf(format, v), v, true
		}
		sa, va, oka := cell(a)
		sb, vb, okb := cell(b)
		ratio := "–"
		if oka && okb && va > 0 && vb > 0 {
			ratio = fmt.Sprintf("%.2f", va/vb)
		}
		if !higherBetter {
			figure += " (lower is better)"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", scenario, figure, sa, sb, ratio)
	}
	lat := func(f func(*Quantiles) float64) func(*Report) (float64, bool) {
		return func(r *Report) (float64, bool) {
			if r.LatencyMs == nil {
				return 0, false
			}
			return f(r.LatencyMs), true
		}
	}
	msg := func(f func(*Messages) float64) func(*Report) (float64, bool) {
		return func(r *Report) (float64, bool) {
			if r.Messages == nil {
				return 0, false
			}
			return f(r.Messages), true
		}
	}
	row("seed", "delivered msg/s", msg(func(m *Messages) float64 { return m.DeliveredPerSec }), "%.0f", true)
	row("seed", "latency p50 (ms)", lat(func(q *Quantiles) float64 { return q.P50 }), "%.1f", false)
	row("seed", "latency p99 (ms)", lat(func(q *Quantiles) float64 { return q.P99 }), "%.1f", false)
	row("seed", "latency max (ms)", lat(func(q *Quantiles) float64 { return q.Max }), "%.1f", false)
	row("seed", "lost / duplicated / reordered", func(r *Report) (float64, bool) {
		if r.Messages == nil {
			return 0, false
		}
		return float64(r.Messages.Lost + r.Messages.Duplicated + r.Messages.Reordered), true
	}, "%.0f", false)
	row("seed", "server CPU (% of machine)", func(r *Report) (float64, bool) { return r.ServerCPU, true }, "%.1f", false)
	row("seed", "server peak RSS (MiB)", func(r *Report) (float64, bool) {
		t := 0.0
		for _, s := range r.Servers {
			t += s.PeakMiB
		}
		return t, true
	}, "%.0f", false)
	row("seed", "connect p99 (ms)", func(r *Report) (float64, bool) { return r.Connections.ConnectMs.P99, true }, "%.1f", false)
	row("max", "sustained delivered msg/s (p99 < 100 ms, 0 lost)", func(r *Report) (float64, bool) {
		if r.Best == nil {
			return 0, false
		}
		return r.Best.DeliveredPerSec, true
	}, "%.0f", true)
	row("max", "… its inbound events/s", func(r *Report) (float64, bool) {
		if r.Best == nil {
			return 0, false
		}
		return r.Best.SentPerSec, true
	}, "%.0f", true)
	row("max", "… its p99 (ms)", func(r *Report) (float64, bool) {
		if r.Best == nil {
			return 0, false
		}
		return r.Best.LatencyMs.P99, true
	}, "%.1f", false)
	row("max", "… its server CPU (% of machine)", func(r *Report) (float64, bool) {
		if r.Best == nil {
			return 0, false
		}
		return r.Best.ServerCPU, true
	}, "%.0f", false)
	row("conns", "idle connections held", func(r *Report) (float64, bool) {
		if r.Idle == nil {
			return 0, false
		}
		return float64(r.Idle.Conns), true
	}, "%.0f", true)
	row("conns", "socket-holder RSS per connection (KiB)", func(r *Report) (float64, bool) {
		if r.Idle == nil {
			return 0, false
		}
		return r.Idle.KiBPerConn, true
	}, "%.1f", false)
	row("conns", "socket-holder processes", func(r *Report) (float64, bool) {
		if r.Idle == nil {
			return 0, false
		}
		return float64(r.Idle.FrontProcs), true
	}, "%.0f", true)
	row("conns", "connect p99 (ms)", func(r *Report) (float64, bool) { return r.Connections.ConnectMs.P99, true }, "%.1f", false)
	fmt.Fprintln(w)
}

// machineLine says where the results were taken: cores, and the load
// average during the runs.
func machineLine(reports []*Report) string {
	cores := 0
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range reports {
		if r == nil {
			continue
		}
		cores = r.Machine.Cores
		for _, l := range []string{r.Machine.LoadBefore, r.Machine.LoadAfter} {
			if f := strings.Fields(l); len(f) > 0 {
				if v, err := strconv.ParseFloat(f[0], 64); err == nil {
					lo, hi = math.Min(lo, v), math.Max(hi, v)
				}
			}
		}
	}
	load := "not read"
	if lo <= hi {
		load = fmt.Sprintf("%.1f to %.1f", lo, hi)
	}
	return fmt.Sprintf("Results on this machine: %d cores, every process on it over loopback (1-minute load average during the runs: %s).", cores, load)
}
