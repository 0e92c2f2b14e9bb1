package bench

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

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
		fs.StringVar(&p.Profile, "profile", "", "max: capture CPU profiles of the roomstream connectors and workers during each step into this directory, and print their top entries with the step's Redis commandstats")
	}
	roomSizes := ""
	if name == "peer" {
		fs.StringVar(&roomSizes, "room-sizes", "10,100", "peer: room sizes, comma-separated, each measured against both stacks; "+
			"the step rates are for the first size and scaled for the others to the same deliveries/s")
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
		fs.BoolVar(&p.Pin, "pin", name == "max" || name == "peer",
			"pin every server process (Redis included, every thread) to one core and the load generator to the others, with taskset; needs 2 cores")
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
	if name == "peer" {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if set["room-size"] && !set["room-sizes"] {
			roomSizes = strconv.Itoa(p.RoomSize)
		}
		for _, f := range strings.Split(roomSizes, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 2 {
				return nil, "", nil, fmt.Errorf("--room-sizes: %q is not a room size of 2 or more", f)
			}
			p.RoomSizes = append(p.RoomSizes, n)
		}
		p.RoomSize = p.RoomSizes[0]
	}
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
