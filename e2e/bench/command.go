package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const usageText = `Usage: roombench <scenario> [flags]

Load generator and benchmark scenarios. Every scenario starts its own
redis-server and servers on loopback (this machine only), runs the load
generator against them, prints a progress line every second and a summary,
and writes a JSON report (--json) and a chart (--chart out.svg).

Scenarios:
  seed    10,000 connections in rooms of 10, 1,000 events/s (9,000 deliveries/s)
          for 60 s on 1 connector + 1 worker + 1 Redis: p99 < 100 ms, server
          CPU < 80% of the machine, nothing lost
  max     raise the inbound rate step by step until p99 passes 100 ms or
          anything is lost; reports the highest sustained delivered msg/s
  conns   the most idle connections held (50,000 by default, over several
          connector and load-generator processes) and RSS per connection
  peer    max against roomstream, then against the Node stack (socket.io 4.8 +
          @socket.io/redis-streams-adapter, 2 processes, one Redis), side by side
  all     seed, max and conns against both stacks; prints the results table
  run     the load generator alone, against servers you started (--url)

The roomstream servers the scenarios start are the roomstream binary beside
roombench (else on $PATH, or --server).

Run 'roombench <scenario> -h' for its flags.
`

// Main runs the roombench command (e2e/bench/cmd/roombench) with its
// arguments: a scenario and its flags, or `shard`, a generator process
// the scenarios start by re-executing the program.
func Main(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(os.Stderr, usageText)
		if len(args) == 0 {
			return errors.New("no scenario given")
		}
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	name, args := args[0], args[1:]
	switch name {
	case "shard":
		return ServeShard(ctx, os.Stdin, os.Stdout)
	case "seed", "max", "conns", "peer", "all", "run":
	default:
		fmt.Fprint(os.Stderr, usageText)
		return fmt.Errorf("unknown scenario %q", name)
	}
	p, target, extra, err := parseFlags(name, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	switch name {
	case "run":
		return runCmd(ctx, p, extra)
	case "peer":
		return peerCmd(ctx, p)
	case "all":
		return allCmd(ctx, p, extra)
	}
	targets := []string{target}
	if target == "both" {
		targets = []string{"roomstream", "node"}
	}
	var reports []*Report
	for _, t := range targets {
		var r *Report
		var err error
		switch name {
		case "seed":
			r, err = Seed(ctx, t, p)
		case "max":
			r, err = Max(ctx, t, p)
		case "conns":
			r, err = Conns(ctx, t, p)
		}
		if r != nil {
			printSummary(p.Out, r)
			reports = append(reports, r)
		}
		if err != nil {
			return err
		}
	}
	return finish(p, reports)
}

// runFlags are the flags only `run` has.
type runFlags struct {
	urls  string
	pids  string
	procs string
}

func parseFlags(name string, args []string) (*Params, string, *runFlags, error) {
	fs := flag.NewFlagSet("roombench "+name, flag.ContinueOnError)
	p := &Params{Out: os.Stdout, Join: true}
	def := scenarioDefaults(name)
	fs.IntVar(&p.Conns, "conns", def.Conns, "connections")
	fs.IntVar(&p.RoomSize, "room-size", 10, "members per room")
	fs.Float64Var(&p.Rate, "rate", def.Rate, "inbound events per second, all connections together (0: idle)")
	fs.DurationVar(&p.Duration, "duration", def.Duration, "sending window (conns: how long connections are held)")
	fs.DurationVar(&p.RampUp, "ramp-up", def.RampUp, "time over which connections are opened")
	fs.IntVar(&p.SourceAddrs, "source-addrs", -1, "loopback source addresses to dial from (127.0.0.2...); -1: one per 28,000 connections")
	fs.IntVar(&p.Generators, "generators", 0, "load-generator processes (0: one per 19,000 connections)")
	fs.StringVar(&p.Chart, "chart", "", "write an SVG chart of latency and throughput over time to this file")
	fs.StringVar(&p.JSON, "json", "", "write the JSON report to this file (- = stdout)")
	if name == "max" || name == "peer" {
		fs.StringVar(&p.Profile, "profile", "", "max: capture CPU profiles of the roomstream connectors and workers and Redis's INFO commandstats during each step into this directory, and print their top entries")
	}
	noJoin := fs.Bool("no-join", false, "connect only, do not join rooms")
	transport := fs.String("transport", "websocket", "how the simulated users connect: websocket, or polling (HTTP long-polling, never upgraded)")
	target := "roomstream"
	rf := &runFlags{}
	if name == "run" {
		fs.StringVar(&rf.urls, "url", "", "target base URLs, comma-separated (http://127.0.0.1:8080,...); connections are spread over them")
		fs.StringVar(&p.Secret, "secret", os.Getenv("ROOMSTREAM_JWT_SECRET"), "JWT secret of the servers (default $ROOMSTREAM_JWT_SECRET)")
		fs.StringVar(&rf.pids, "pids", "", "server PIDs whose CPU and memory to report, comma-separated")
		fs.StringVar(&rf.procs, "procs", "", "server processes to report, by command-line substring, comma-separated (e.g. 'roomstream connector,redis-server')")
	} else {
		p.Secret = NewSecret()
		if name != "peer" && name != "all" {
			fs.StringVar(&target, "target", "roomstream", "stack to run against: roomstream, node or both")
		}
		fs.IntVar(&p.Connectors, "connectors", def.Connectors, "roomstream connector processes")
		fs.IntVar(&p.Workers, "workers", 1, "roomstream worker processes")
		fs.IntVar(&p.NodeProcs, "node-procs", def.NodeProcs, "Node peer processes")
		fs.StringVar(&p.Server, "server", "", "the roomstream binary the connectors and workers run (default: roomstream beside this program, else on $PATH)")
		fs.StringVar(&p.PeerDir, "peer-dir", "e2e/bench/peer", "directory of the Node peer (server.js, package-lock.json)")
		fs.BoolVar(&p.KeepLogs, "keep-logs", false, "keep the servers' logs (their directory is printed on failure)")
		env := fs.String("env", "", "extra ROOMSTREAM_* settings for roomstream processes, comma-separated (NAME=value,...)")
		defer func() {
			if *env != "" {
				p.Env = strings.Split(*env, ",")
			}
		}()
	}
	fs.Float64Var(&p.StartRate, "start-rate", 1000, "max: first step's inbound events/s")
	fs.Float64Var(&p.StepRate, "step-rate", 1000, "max: increase per step")
	fs.Float64Var(&p.MaxRate, "max-rate", 200_000, "max: highest rate tried")
	fs.DurationVar(&p.StepDuration, "step-duration", 10*time.Second, "max: length of a step")
	fs.IntVar(&p.Refine, "refine", 2, "max: bisection steps after the first failure")
	fs.IntVar(&p.Retries, "retries", 1, "max: times a failing step is run again before it counts as failed (another process on a shared machine can stall the servers for a moment)")
	fs.DurationVar(&p.P99Limit, "p99-limit", 100*time.Millisecond, "max: p99 latency a step must stay under")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: roombench %s [flags]\n\n", name)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, "", nil, err
	}
	if fs.NArg() > 0 {
		return nil, "", nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	p.Join = !*noJoin
	switch *transport {
	case "websocket":
	case "polling":
		p.Polling = true
	default:
		return nil, "", nil, fmt.Errorf("--transport must be websocket or polling, got %q", *transport)
	}
	switch {
	case p.Conns < 1:
		return nil, "", nil, errors.New("--conns must be at least 1")
	case p.RoomSize < 1:
		return nil, "", nil, errors.New("--room-size must be at least 1")
	case p.Rate < 0:
		return nil, "", nil, errors.New("--rate must not be negative")
	case target != "roomstream" && target != "node" && target != "both":
		return nil, "", nil, fmt.Errorf("--target must be roomstream, node or both, got %q", target)
	case p.Generators == 0 && p.Conns > socketsPerProcess*p.generators():
		return nil, "", nil, errors.New("internal: generator count")
	}
	if name == "run" && rf.urls == "" {
		return nil, "", nil, errors.New("--url is required")
	}
	if name == "run" && len(p.Secret) < 16 {
		return nil, "", nil, errors.New("--secret (or ROOMSTREAM_JWT_SECRET) must be the servers' JWT secret")
	}
	return p, target, rf, nil
}

// scenarioDefaults are each scenario's defaults.
func scenarioDefaults(name string) Params {
	p := Params{Conns: 10_000, Rate: 1000, Duration: 60 * time.Second, RampUp: 20 * time.Second, Connectors: 1, NodeProcs: 2}
	switch name {
	case "conns":
		p.Conns, p.Rate, p.Duration, p.RampUp, p.Connectors, p.NodeProcs = 50_000, 0, 30*time.Second, 100*time.Second, 4, 4
	case "run":
		p.Conns, p.Duration, p.RampUp = 500, 10*time.Second, 2*time.Second
	}
	return p
}

func runCmd(ctx context.Context, p *Params, rf *runFlags) error {
	urls := strings.Split(rf.urls, ",")
	var watch []Watched
	for _, s := range strings.Split(rf.pids, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		pid, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("--pids: %q is not a PID", s)
		}
		watch = append(watch, Watched{PID: pid, Label: procName(pid) + "-" + s})
	}
	for _, pat := range strings.Split(rf.procs, ",") {
		if pat = strings.TrimSpace(pat); pat == "" {
			continue
		}
		pids, err := FindProcs(pat)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return fmt.Errorf("--procs: no process matches %q", pat)
		}
		for _, pid := range pids {
			watch = append(watch, Watched{PID: pid, Label: strings.ReplaceAll(pat, " ", "-") + "-" + strconv.Itoa(pid)})
		}
	}
	r, err := Load(ctx, "run", strings.Join(urls, ","), urls, watch, p)
	if r != nil {
		printSummary(p.Out, r)
		if ferr := finish(p, []*Report{r}); err == nil {
			err = ferr
		}
	}
	return err
}

// finish writes the JSON report and the chart.
func finish(p *Params, reports []*Report) error {
	if p.JSON != "" && len(reports) > 0 {
		var v any = reports[0]
		if len(reports) > 1 {
			v = reports
		}
		if err := WriteJSON(p.JSON, v); err != nil {
			return err
		}
	}
	if p.Chart != "" {
		for i, r := range reports {
			path := p.Chart
			if len(reports) > 1 {
				path = suffixed(path, r.Target)
			} else if i > 0 {
				continue
			}
			title := fmt.Sprintf("roombench %s against %s: %d connections, rooms of %d (%d cores)",
				r.Scenario, r.Target, r.Config.Conns, r.Config.RoomSize, r.Machine.Cores)
			if err := WriteChart(path, title, r.Timeline); err != nil {
				return err
			}
			fmt.Fprintf(p.Out, "chart written to %s\n", path)
		}
	}
	return nil
}

// suffixed puts a suffix before a path's extension: a.svg -> a-node.svg.
func suffixed(path, suffix string) string {
	if i := strings.LastIndexByte(path, '.'); i > strings.LastIndexByte(path, '/') {
		return path[:i] + "-" + suffix + path[i:]
	}
	return path + "-" + suffix
}

// peerCmd runs max against both stacks and prints them side by side.
func peerCmd(ctx context.Context, p *Params) error {
	var rs, node *Report
	var err error
	if rs, err = Max(ctx, "roomstream", p); rs != nil {
		printSummary(p.Out, rs)
	}
	if err != nil {
		return err
	}
	if node, err = Max(ctx, "node", p); node != nil {
		printSummary(p.Out, node)
	}
	if err != nil {
		return err
	}
	printTable(p.Out, []*Report{rs, node})
	return finish(p, []*Report{rs, node})
}

// allCmd runs every scenario against both stacks and prints the table.
func allCmd(ctx context.Context, p *Params, _ *runFlags) error {
	var reports []*Report
	run := func(name, target string, f func(context.Context, string, *Params) (*Report, error), q Params) error {
		r, err := f(ctx, target, &q)
		if r != nil {
			printSummary(p.Out, r)
			reports = append(reports, r)
		}
		return err
	}
	seed := *p
	seed.Conns, seed.Rate, seed.Duration, seed.RampUp, seed.Connectors, seed.NodeProcs = 10_000, 1000, 60*time.Second, 20*time.Second, 1, 2
	maxp := seed
	conns := *p
	def := scenarioDefaults("conns")
	conns.Conns, conns.Rate, conns.Duration, conns.RampUp, conns.Connectors, conns.NodeProcs = def.Conns, 0, def.Duration, def.RampUp, def.Connectors, def.NodeProcs
	for _, t := range []string{"roomstream", "node"} {
		if err := run("seed", t, Seed, seed); err != nil {
			return err
		}
	}
	for _, t := range []string{"roomstream", "node"} {
		if err := run("max", t, Max, maxp); err != nil {
			return err
		}
	}
	for _, t := range []string{"roomstream", "node"} {
		if err := run("conns", t, Conns, conns); err != nil {
			return err
		}
	}
	printTable(p.Out, reports)
	if p.Chart != "" {
		for _, r := range reports {
			path := suffixed(suffixed(p.Chart, r.Scenario), r.Target)
			title := fmt.Sprintf("roombench %s against %s: %d connections, rooms of %d (%d cores)",
				r.Scenario, r.Target, r.Config.Conns, r.Config.RoomSize, r.Machine.Cores)
			if err := WriteChart(path, title, r.Timeline); err != nil {
				return err
			}
			fmt.Fprintf(p.Out, "chart written to %s\n", path)
		}
	}
	if p.JSON != "" {
		return WriteJSON(p.JSON, reports)
	}
	return nil
}

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
	fmt.Fprintf(w, "\nResults on this machine: %d cores, every process on it over loopback (1-minute load average during the runs: %s).\n\n", cores, load)
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
