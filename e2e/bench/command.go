package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
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
          anything is lost, duplicated or reordered; reports the highest
          rate held per server core and what each process (redis,
          connector-0, worker-0, node-0...) cost per event and per delivery
  conns   the most idle connections held (50,000 by default, over several
          connector and load-generator processes) and RSS per connection
  peer    max against roomstream, then against the Node stack (socket.io 4.8 +
          @socket.io/redis-streams-adapter, 2 processes, one Redis), in rooms
          of 10 and of 100 (--room-sizes), side by side per server core
  all     seed, max and conns against both stacks; prints the results table
  run     the load generator alone, against servers you started (--url)

The roomstream servers the scenarios start are the roomstream binary beside
roombench (else on $PATH, or --server).

max and peer pin every server process (Redis included) to one core and the
load generator to the others when the machine has two cores or more
(--pin=false: not pinned). A step whose generator was over 80% busy has no
result: the search stops there, and the best step is a lower bound.

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
		sizes := map[int]bool{}
		for _, r := range reports {
			sizes[r.Config.RoomSize] = true
		}
		for i, r := range reports {
			path := p.Chart
			if len(reports) > 1 {
				path = suffixed(path, r.Target)
				if len(sizes) > 1 {
					path = suffixed(path, "r"+strconv.Itoa(r.Config.RoomSize))
				}
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
