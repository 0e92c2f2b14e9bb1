package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Params are a scenario's parameters (flags of roombench).
type Params struct {
	Conns    int
	RoomSize int
	// RoomSizes are peer's room sizes, each measured against both stacks.
	RoomSizes   []int
	Rate        float64
	Duration    time.Duration
	RampUp      time.Duration
	SourceAddrs int // -1: as many as the connection count needs
	Generators  int // 0: as many as the connection count needs
	Secret      string
	Join        bool
	Polling     bool // users speak HTTP long-polling (--transport polling)

	// max
	StartRate, StepRate, MaxRate float64
	StepDuration                 time.Duration
	Refine                       int
	Retries                      int // a failing step is run again this many times before it counts as failed
	P99Limit                     time.Duration

	// stacks
	Connectors, Workers, NodeProcs int
	// Server is the roomstream binary of a roomstream stack ("": see
	// StackOptions.Server).
	Server   string
	PeerDir  string
	Env      []string
	KeepLogs bool

	Chart string
	JSON  string
	// Profile, when set, is a directory: max against roomstream captures
	// CPU profiles of every connector and worker during each step, writes
	// them there and prints their top with Redis's command stats.
	Profile string
	// Pin runs the servers on one core and the generator on the others
	// (pin.go), when the machine has two cores or more.
	Pin bool
	Out io.Writer

	placed  bool
	plan    *pinPlan // nil: not pinned
	pinNote string   // why not
}

// place decides where the run's processes go, says so, and moves this
// process (the generator, or its coordinator) to the generator's cores.
func (p *Params) place() error {
	if !p.placed {
		p.placed = true
		p.plan, p.pinNote = planPinning(p.Pin)
	}
	announce(p.Out, p.plan, p.pinNote)
	if p.plan != nil {
		return p.plan.pinSelf()
	}
	return nil
}

func (p *Params) serverCPUs() []int {
	if p.plan == nil {
		return nil
	}
	return p.plan.servers
}

func (p *Params) generatorCPUs() []int {
	if p.plan == nil {
		return nil
	}
	return p.plan.generator
}

// pinning reads back where the run's processes may run.
func (p *Params) pinning(servers, generator []Watched) *Pinning {
	if p.plan == nil {
		return &Pinning{Note: p.pinNote}
	}
	return p.plan.pinning(servers, generator)
}

// socketsPerProcess is how many sockets one process may hold here: the
// open-file limit (20,000, not raisable on this machine) less a margin.
const socketsPerProcess = 19_000

// portsPerAddress is about how many ephemeral ports one source address
// offers (ip_local_port_range 32768-60999).
const portsPerAddress = 28_000

func (p *Params) generators() int {
	if p.Generators > 0 {
		return p.Generators
	}
	return (p.Conns + socketsPerProcess - 1) / socketsPerProcess
}

// sourceAddrs returns the loopback addresses the generator dials from:
// 127.0.0.2, 127.0.0.3, ... (the servers listen on 127.0.0.1).
func (p *Params) sourceAddrs() []string {
	n := p.SourceAddrs
	if n < 0 {
		n = (p.Conns + portsPerAddress - 1) / portsPerAddress
		if n == 1 {
			n = 0 // one address is what the kernel picks anyway
		}
	}
	n = min(n, 250)
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("127.0.0.%d", 2+i)
	}
	return out
}

func newRunID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return "b" + hex.EncodeToString(b)
}

// NewSecret returns a random JWT secret for a scenario's stacks.
func NewSecret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (p *Params) options(urls []string, watch []Watched, label string) Options {
	return Options{
		Shard: ShardConfig{URLs: urls, RoomSize: p.RoomSize, RampUp: p.RampUp, SourceAddrs: p.sourceAddrs(),
			Secret: p.Secret, Run: newRunID(), Join: p.Join, Polling: p.Polling},
		Conns: p.Conns, Procs: p.generators(), Watch: watch, Progress: p.Out, Label: label,
		GeneratorCPUs: p.generatorCPUs(),
	}
}

func (p *Params) runConfig(urls []string) RunConfig {
	return RunConfig{Conns: p.Conns, RoomSize: p.RoomSize, Rate: p.Rate, Duration: p.Duration.String(),
		RampUp: p.RampUp.String(), URLs: urls, SourceAddrs: len(p.sourceAddrs()), Generators: p.generators()}
}

// StartStack starts the stack a target names.
func StartStack(ctx context.Context, target string, p *Params) (*Stack, error) {
	o := StackOptions{Secret: p.Secret, Server: p.Server, Connectors: p.Connectors, Workers: p.Workers, Env: p.Env,
		NodeProcs: p.NodeProcs, PeerDir: p.PeerDir, KeepLogs: p.KeepLogs, Log: p.Out, CPUs: p.serverCPUs()}
	if p.Profile != "" {
		o.Env = append(slices.Clone(o.Env), "ROOMSTREAM_PPROF=true")
	}
	switch target {
	case "roomstream":
		return StartRoomstream(ctx, o)
	case "node":
		return StartNode(ctx, o)
	}
	return nil, fmt.Errorf("bench: unknown target %q (roomstream or node)", target)
}

func (r *Report) fill(st *Stack, p *Params) {
	r.Config = p.runConfig(st.URLs)
	if st.Name == "roomstream" {
		r.Config.Connectors, r.Config.Workers = max(1, p.Connectors), max(1, p.Workers)
	} else {
		r.Config.NodeProcs = max(1, p.NodeProcs)
	}
}

// Load runs one constant-rate window: connect every client, send at
// p.Rate for p.Duration, and measure delivery, latency, loss and the
// servers' CPU and memory. The seed scenario and `run` use it.
func Load(ctx context.Context, scenario, target string, urls []string, watch []Watched, p *Params) (*Report, error) {
	r := &Report{Scenario: scenario, Target: target, Machine: machine()}
	r.Config = p.runConfig(urls)
	s, err := Start(ctx, p.options(urls, watch, "["+scenario+" "+target+"]"))
	if err != nil {
		return nil, err
	}
	defer s.Close()
	r.Connections = s.Connect
	if p.placed {
		r.Pinning = p.pinning(watch, s.genWatch())
	}
	// Let the joins' broadcasts settle before measuring.
	sleepCtx(ctx, 2*time.Second)
	var st StepResult
	if p.Rate > 0 {
		st, err = s.Step(ctx, p.Rate, p.Duration)
		if err != nil {
			return nil, err
		}
		r.Messages, r.LatencyMs = messages(st), &st.LatencyMs
		r.Servers, r.ServerCPU, r.GeneratorCPU = st.Servers, st.ServerCPU, st.GeneratorCPU
	} else {
		sleepCtx(ctx, p.Duration)
		r.Servers = s.Servers()
	}
	r.Final, err = s.Stop(ctx)
	r.Timeline = s.Timeline()
	r.Machine.LoadAfter = loadAvg()
	return r, err
}

// Seed is scenario 1: 10,000 connections in rooms of 10 sending 1,000
// events/s for 60 s; p99 under 100 ms, server CPU under 80% of the
// machine (roomstream's own target: under 40%), nothing lost.
func Seed(ctx context.Context, target string, p *Params) (*Report, error) {
	if err := p.place(); err != nil {
		return nil, err
	}
	st, err := StartStack(ctx, target, p)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	r, err := Load(ctx, "seed", target, st.URLs, st.Watch, p)
	if err != nil {
		return nil, err
	}
	r.fill(st, p)
	if err := st.Check(); err != nil {
		return r, err
	}
	l, m := r.LatencyMs, r.Messages
	memPct := 0.0
	for _, s := range r.Servers {
		memPct += s.PeakMiB
	}
	memPct = 100 * memPct / float64(max(1, r.Machine.MemMiB))
	r.Checks = []Check{
		{"connections", fmt.Sprint(p.Conns), fmt.Sprint(r.Connections.Established), r.Connections.Established == int64(p.Conns)},
		{"p99 latency", "< 100 ms", fmt.Sprintf("%.1f ms", l.P99), l.P99 < 100},
		{"lost deliveries", "0", fmt.Sprint(m.Lost), m.Lost == 0},
		{"duplicated deliveries", "0", fmt.Sprint(m.Duplicated), m.Duplicated == 0},
		{"reordered deliveries", "0", fmt.Sprint(m.Reordered), m.Reordered == 0},
		{"server CPU (design ceiling)", "< 80% of the machine", fmt.Sprintf("%.1f%%", r.ServerCPU), r.ServerCPU < 80},
		{"server CPU (roomstream target: half the ceiling)", "< 40% of the machine", fmt.Sprintf("%.1f%%", r.ServerCPU), r.ServerCPU < 40},
		{"server memory (peak RSS)", "< 80% of the machine", fmt.Sprintf("%.1f%%", memPct), memPct < 80},
		{"delivered/s", fmt.Sprintf(">= %.0f (rate x (room size - 1))", 0.97*p.Rate*float64(p.RoomSize-1)),
			fmt.Sprintf("%.0f", m.DeliveredPerSec), m.DeliveredPerSec >= 0.97*p.Rate*float64(p.RoomSize-1)},
	}
	return r, nil
}

// Conns is scenario 3: open p.Conns connections (joined to rooms, idle),
// hold them for p.Duration and report the memory of the processes holding
// the sockets, per connection.
func Conns(ctx context.Context, target string, p *Params) (*Report, error) {
	if err := p.place(); err != nil {
		return nil, err
	}
	st, err := StartStack(ctx, target, p)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	r := &Report{Scenario: "conns", Target: target, Machine: machine()}
	r.fill(st, p)
	r.Config.Rate = 0
	s, err := Start(ctx, p.options(st.URLs, st.Watch, "[conns "+target+"]"))
	if err != nil {
		return nil, err
	}
	defer s.Close()
	r.Connections = s.Connect
	r.Pinning = p.pinning(st.Watch, s.genWatch())
	hold, err := s.Step(ctx, 0, p.Duration)
	if err != nil {
		return nil, err
	}
	r.Servers = hold.Servers
	id := &IdleResult{Conns: hold.Conns, HoldSeconds: p.Duration.Seconds()}
	var start float64
	for _, u := range r.Servers {
		switch {
		case strings.HasPrefix(u.Label, "connector") || strings.HasPrefix(u.Label, "node"):
			id.FrontRSSMiB += u.RSSMiB
			start += u.StartRSSMiB
			id.FrontProcs++
		case u.Label == "redis":
			id.RedisRSSMiB += u.RSSMiB
		default:
			id.OtherRSSMiB += u.RSSMiB
		}
	}
	if id.Conns > 0 {
		id.KiBPerConn = id.FrontRSSMiB * 1024 / float64(id.Conns)
		id.DeltaKiBPerConn = (id.FrontRSSMiB - start) * 1024 / float64(id.Conns)
		if target == "roomstream" {
			id.GoRuntime = st.goMem(ctx, id.Conns)
		}
	}
	r.Idle = id
	if err := st.Check(); err != nil {
		return r, err
	}
	r.Final, err = s.Stop(ctx)
	r.Timeline = s.Timeline()
	r.Machine.LoadAfter = loadAvg()
	r.Checks = []Check{
		{"connections held", fmt.Sprintf(">= %d", p.Conns), fmt.Sprint(id.Conns), id.Conns >= int64(p.Conns)},
		{"RSS per connection (roomstream target)", "<= 16 KiB", fmt.Sprintf("%.1f KiB", id.KiBPerConn), id.KiBPerConn <= 16},
		{"disconnects while idle", "0", fmt.Sprint(r.Final.Counters.Disconnects), r.Final.Counters.Disconnects == 0},
	}
	return r, err
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
