package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
)

// Report is the JSON result of one scenario against one stack.
type Report struct {
	Scenario string    `json:"scenario"`
	Target   string    `json:"target"` // roomstream, node, or the URLs of `run`
	Machine  Machine   `json:"machine"`
	Config   RunConfig `json:"config"`
	// Pinning says which cores the servers and the generator ran on.
	Pinning     *Pinning       `json:"pinning,omitempty"`
	Connections ConnectSummary `json:"connections"`
	// Messages and LatencyMs describe the measured sending window (seed,
	// run) or the best step (max).
	Messages  *Messages  `json:"messages,omitempty"`
	LatencyMs *Quantiles `json:"latency_ms,omitempty"`
	// Servers is each server process's CPU over the measured window and
	// its memory at its end.
	Servers   []ProcUsage `json:"servers,omitempty"`
	ServerCPU float64     `json:"server_cpu_percent_of_machine"`
	// GeneratorCPU is the load generator's own CPU over the window.
	GeneratorCPU float64      `json:"generator_cpu_percent_of_machine"`
	Steps        []StepResult `json:"steps,omitempty"`
	Best         *StepResult  `json:"best,omitempty"`
	// Stopped says why max's search ended: a failure, the generator's
	// limit, or the highest rate asked for.
	Stopped string `json:"stopped,omitempty"`
	// Common is, in peer, the step at the highest rate both stacks
	// passed: their costs compared at the same load.
	Common   *StepResult `json:"common_load,omitempty"`
	Idle     *IdleResult `json:"idle,omitempty"`
	Checks   []Check     `json:"checks,omitempty"`
	Final    Final       `json:"final"`
	Timeline []Point     `json:"timeline,omitempty"`
}

// Machine describes where the figures were taken.
type Machine struct {
	Cores      int    `json:"cores"`
	MemMiB     int64  `json:"mem_mib"`
	LoadBefore string `json:"loadavg_before"`
	LoadAfter  string `json:"loadavg_after"`
	Note       string `json:"note"`
}

func machine() Machine {
	return Machine{Cores: runtime.NumCPU(), MemMiB: memTotal() >> 20, LoadBefore: loadAvg(),
		Note: "every process (servers, Redis, load generators) on this one machine, over loopback"}
}

func memTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// RunConfig records a run's parameters.
type RunConfig struct {
	Conns       int      `json:"conns"`
	RoomSize    int      `json:"room_size"`
	Rate        float64  `json:"rate,omitempty"`
	Duration    string   `json:"duration,omitempty"`
	RampUp      string   `json:"ramp_up"`
	URLs        []string `json:"urls"`
	SourceAddrs int      `json:"source_addrs"`
	Generators  int      `json:"generator_processes"`
	Connectors  int      `json:"connectors,omitempty"`
	Workers     int      `json:"workers,omitempty"`
	NodeProcs   int      `json:"node_processes,omitempty"`
}

// Messages summarises delivery over a window.
type Messages struct {
	Sent            int64   `json:"sent"`
	SentPerSec      float64 `json:"sent_per_s"`
	Delivered       int64   `json:"delivered"`
	DeliveredPerSec float64 `json:"delivered_per_s"`
	Echoes          int64   `json:"echoes"`
	Lost            int64   `json:"lost"`
	Duplicated      int64   `json:"duplicated"`
	Gaps            int64   `json:"gaps"`
	Reordered       int64   `json:"reordered"`
	ErrorEvents     int64   `json:"error_events"`
	SendErrors      int64   `json:"send_errors"`
	Disconnects     int64   `json:"disconnects"`
}

func messages(st StepResult) *Messages {
	c := st.Counters
	return &Messages{Sent: c.Sent, SentPerSec: st.SentPerSec, Delivered: c.Delivered, DeliveredPerSec: st.DeliveredPerSec,
		Echoes: c.Echoes, Lost: st.Lost, Duplicated: c.Dups, Gaps: c.Gaps, Reordered: c.Reordered, ErrorEvents: c.ErrorEvents,
		SendErrors: c.SendErrors, Disconnects: c.Disconnects}
}

// IdleResult is what holding idle connections costs.
type IdleResult struct {
	Conns       int64   `json:"conns"`
	HoldSeconds float64 `json:"hold_seconds"`
	// FrontRSSMiB is the resident memory of the processes that hold the
	// sockets (connectors, or Node processes) at the end of the hold.
	FrontRSSMiB float64 `json:"front_rss_mib"`
	// KiBPerConn is FrontRSSMiB per connection: everything the socket
	// holders use, divided by the connections.
	KiBPerConn float64 `json:"kib_per_conn"`
	// DeltaKiBPerConn counts only the growth since before the first
	// connection (the process's fixed cost left out).
	DeltaKiBPerConn float64 `json:"delta_kib_per_conn"`
	FrontProcs      int     `json:"front_processes"`
	RedisRSSMiB     float64 `json:"redis_rss_mib"`
	OtherRSSMiB     float64 `json:"other_rss_mib"` // workers
	// GoRuntime breaks a roomstream connector's memory down per
	// connection (from its /metrics), summed over the connectors.
	GoRuntime *GoMem `json:"go_runtime,omitempty"`
}

// GoMem is what the Go runtime of the connectors reports, in KiB per
// connection (goroutines: per connection).
type GoMem struct {
	StackKiB      float64 `json:"stack_kib_per_conn"`
	HeapInuseKiB  float64 `json:"heap_inuse_kib_per_conn"`
	HeapAllocKiB  float64 `json:"heap_alloc_kib_per_conn"`
	GoroutinesPer float64 `json:"goroutines_per_conn"`
}

// Check is one target a scenario verifies.
type Check struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Pass bool   `json:"pass"`
}

// WriteJSON writes v, indented, to path ("-" = stdout).
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = os.Stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// printSummary writes a short human summary of a report.
func printSummary(w io.Writer, r *Report) {
	fmt.Fprintf(w, "\n== %s against %s (%d cores, load %s -> %s)\n", r.Scenario, r.Target, r.Machine.Cores, r.Machine.LoadBefore, r.Machine.LoadAfter)
	if pn := r.Pinning; pn != nil {
		fmt.Fprintf(w, "pinning      %s", pn.Note)
		if len(pn.Roles) > 0 {
			var roles []string
			for _, role := range sortedKeys(pn.Roles) {
				roles = append(roles, role+" on "+pn.Roles[role])
			}
			fmt.Fprintf(w, "; read back from /proc: %s", strings.Join(roles, ", "))
		}
		fmt.Fprintln(w)
	}
	c := r.Connections
	fmt.Fprintf(w, "connections  %d of %d up (%d failed) in %.1fs; connect p50 %.1fms p99 %.1fms max %.1fms; join p99 %.1fms\n",
		c.Established, c.Target, c.Failed, c.Seconds, c.ConnectMs.P50, c.ConnectMs.P99, c.ConnectMs.Max, c.JoinMs.P99)
	if m := r.Messages; m != nil {
		fmt.Fprintf(w, "messages     sent %d (%.0f/s), delivered %d (%.0f/s), lost %d, duplicated %d, reordered %d, errors %d, disconnects %d\n",
			m.Sent, m.SentPerSec, m.Delivered, m.DeliveredPerSec, m.Lost, m.Duplicated, m.Reordered, m.ErrorEvents+m.SendErrors, m.Disconnects)
	}
	if l := r.LatencyMs; l != nil {
		fmt.Fprintf(w, "latency      p50 %.1fms  p90 %.1fms  p99 %.1fms  max %.1fms  (send on one client to receipt on each other member)\n",
			l.P50, l.P90, l.P99, l.Max)
	}
	for _, s := range r.Steps {
		gen := fmt.Sprintf("generator cpu %3.0f%%", s.GeneratorCPU)
		if s.Cost != nil {
			gen = fmt.Sprintf("generator %3.0f%% of its cores", s.Cost.Generator.BusyPercent)
		}
		fmt.Fprintf(w, "step         %6.0f/s -> delivered %8.0f/s  p50 %6.1fms  p99 %7.1fms  lost %d  server cpu %3.0f%%  %s  %s\n",
			s.Rate, s.DeliveredPerSec, s.LatencyMs.P50, s.LatencyMs.P99, s.Lost, s.ServerCPU, gen, verdict(s))
	}
	if b := r.Best; b != nil {
		fmt.Fprintf(w, "best         %.0f delivered msg/s sustained (inbound %.0f/s) at p99 %.1fms, 0 lost, duplicated or reordered\n", b.DeliveredPerSec, b.SentPerSec, b.LatencyMs.P99)
		if c := b.Cost; c != nil {
			fmt.Fprintf(w, "per core     %.0f inbound msg/s and %.0f deliveries/s per server core (%.0f server core(s))\n", c.EventsPerCore, c.DeliveriesPerCore, c.ServerCores)
			printCost(w, "best cost    ", c)
		}
	} else if len(r.Steps) > 0 {
		fmt.Fprintf(w, "best         no step passed\n")
	}
	if r.Stopped != "" {
		fmt.Fprintf(w, "search       ended: %s\n", r.Stopped)
	}
	if id := r.Idle; id != nil {
		fmt.Fprintf(w, "idle         %d connections held %.0fs: %d socket-holding processes use %.0f MiB = %.1f KiB per connection (%.1f KiB above their empty size); redis %.0f MiB\n",
			id.Conns, id.HoldSeconds, id.FrontProcs, id.FrontRSSMiB, id.KiBPerConn, id.DeltaKiBPerConn, id.RedisRSSMiB)
		if g := id.GoRuntime; g != nil {
			fmt.Fprintf(w, "go runtime   per connection: stacks %.1f KiB, heap in use %.1f KiB (live objects %.1f KiB), %.2f goroutines\n",
				g.StackKiB, g.HeapInuseKiB, g.HeapAllocKiB, g.GoroutinesPer)
		}
	}
	if len(r.Servers) > 0 {
		fmt.Fprintf(w, "servers      cpu %.0f%% of the machine in total:", r.ServerCPU)
		for _, s := range r.Servers {
			fmt.Fprintf(w, "  %s %.0f%% (rss %.0f, peak %.0f MiB)", s.Label, s.CPUPercent, s.RSSMiB, s.PeakMiB)
		}
		fmt.Fprintf(w, "; load generator %.0f%%\n", r.GeneratorCPU)
		// (max prints its best step's cost per role above.)
		if m := r.Messages; m != nil && m.SentPerSec > 0 && m.DeliveredPerSec > 0 && (r.Best == nil || r.Best.Cost == nil) {
			fmt.Fprintf(w, "cost         CPU per inbound event:")
			for _, s := range r.Servers {
				fmt.Fprintf(w, "  %s %.1f µs", s.Label, s.CPUCores*1e6/m.SentPerSec)
			}
			fmt.Fprintf(w, "; per delivered message:")
			for _, s := range r.Servers {
				fmt.Fprintf(w, "  %s %.2f µs", s.Label, s.CPUCores*1e6/m.DeliveredPerSec)
			}
			fmt.Fprintln(w)
		}
	}
	for _, c := range r.Checks {
		v := "PASS"
		if !c.Pass {
			v = "FAIL"
		}
		fmt.Fprintf(w, "check        %-4s %s: want %s, got %s\n", v, c.Name, c.Want, c.Got)
	}
	if len(r.Final.Errors) > 0 {
		fmt.Fprintf(w, "errors seen  (samples)\n")
		for k, v := range r.Final.Errors {
			fmt.Fprintf(w, "  %6d x %s\n", v, k)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
