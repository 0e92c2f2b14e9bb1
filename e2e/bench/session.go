package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Options configure a load-generator session against servers that run.
type Options struct {
	// Shard is the template of every shard: targets, room size, ramp-up,
	// source addresses, JWT secret, run id... (Conns and FirstConn are
	// set per shard).
	Shard ShardConfig
	// Conns is the number of connections of the whole session.
	Conns int
	// Procs is the number of generator processes. 1 runs the connections
	// in this process; more start `roombench shard` children, each
	// with a share of whole rooms (one process may hold at most ~19,900
	// sockets here: its open-file limit).
	Procs int
	// Watch are the server processes whose CPU and memory are reported.
	Watch []Watched
	// Progress receives one line per second (nil: none).
	Progress io.Writer
	// Label starts every progress line.
	Label string
	// GeneratorCPUs pins the generator's shard processes to these cores
	// (nil: not pinned).
	GeneratorCPUs []int
}

// Quantiles of a latency or duration distribution, in milliseconds.
type Quantiles struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
	Mean  float64 `json:"mean"`
}

func quantiles(h *Histogram) Quantiles {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Quantiles{Count: h.Count(), P50: ms(h.Quantile(0.50)), P90: ms(h.Quantile(0.90)), P99: ms(h.Quantile(0.99)),
		P999: ms(h.Quantile(0.999)), Max: ms(h.Max()), Mean: h.Mean() / 1000}
}

// Point is one second of a session, for progress lines and charts.
type Point struct {
	T           float64 `json:"t"` // seconds since the session started
	Phase       string  `json:"phase"`
	Conns       int64   `json:"conns"`
	SentPS      float64 `json:"sent_per_s"`
	DeliveredPS float64 `json:"delivered_per_s"`
	P50         float64 `json:"p50_ms"`
	P99         float64 `json:"p99_ms"`
	Max         float64 `json:"max_ms"`
	Errors      int64   `json:"errors"`
	CPUPercent  float64 `json:"server_cpu_percent"`
	RSSMiB      float64 `json:"server_rss_mib"`
	GenCPU      float64 `json:"generator_cpu_percent"`
}

// ConnectSummary describes the connection phase.
type ConnectSummary struct {
	Target      int       `json:"target"`
	Established int64     `json:"established"`
	Failed      int64     `json:"failed"`
	ConnectMs   Quantiles `json:"connect_ms"` // dial to Socket.IO CONNECT reply
	JoinMs      Quantiles `json:"join_ms"`    // dial to the join-room ack
	Seconds     float64   `json:"seconds"`    // until every connection was attempted
	// Servers is the servers' memory once connected (CPU over the phase).
	Servers []ProcUsage `json:"servers,omitempty"`
}

// StepResult is one step of constant inbound rate.
type StepResult struct {
	Rate            float64     `json:"rate"` // events/s asked for
	Seconds         float64     `json:"seconds"`
	Conns           int64       `json:"conns"`
	SentPerSec      float64     `json:"sent_per_s"`
	DeliveredPerSec float64     `json:"delivered_per_s"`
	Counters        Counters    `json:"counters"`
	Lost            int64       `json:"lost"`
	LatencyMs       Quantiles   `json:"latency_ms"`
	Behind          int64       `json:"generator_behind"` // events the generator could not send in time
	Servers         []ProcUsage `json:"servers,omitempty"`
	ServerCPU       float64     `json:"server_cpu_percent_of_machine"`
	// GeneratorCPU is what the load generator's own processes used: on
	// this machine they compete with the servers for the same cores
	// unless pinned. GeneratorCores is the same in cores, over
	// GeneratorProcs processes.
	GeneratorCPU   float64 `json:"generator_cpu_percent_of_machine"`
	GeneratorCores float64 `json:"generator_cpu_cores"`
	GeneratorProcs int     `json:"generator_processes"`
	// Cost is what the step cost per process role (max).
	Cost *StepCost `json:"cost,omitempty"`
	Pass bool      `json:"pass"`
	// GeneratorBound marks a step whose generator was too busy to tell
	// what limited it: it neither passes nor fails, and max stops there.
	GeneratorBound bool   `json:"generator_bound,omitempty"`
	Why            string `json:"why,omitempty"`
}

// Session is a running set of generator shards.
type Session struct {
	opt     Options
	links   []*link
	start   time.Time
	Connect ConnectSummary

	mu       sync.Mutex
	timeline []Point
	pending  *Histogram
	phase    string
	baseline []ProcSample
	gen      []Watched // the generator's processes: this one and the shards
	stop     chan struct{}
	printed  chan struct{}
	ticked   chan struct{} // a shard sent a tick
	closed   bool
}

// Start opens every connection of a session and returns once each was
// attempted.
func Start(ctx context.Context, opt Options) (*Session, error) {
	if opt.Conns < 1 {
		return nil, errors.New("bench: no connections")
	}
	if opt.Shard.RoomSize < 1 {
		opt.Shard.RoomSize = 1
	}
	procs := max(1, opt.Procs)
	rooms := (opt.Conns + opt.Shard.RoomSize - 1) / opt.Shard.RoomSize
	procs = min(procs, rooms)
	s := &Session{opt: opt, start: time.Now(), pending: &Histogram{}, phase: "connect",
		stop: make(chan struct{}), printed: make(chan struct{}), ticked: make(chan struct{}, 1)}
	s.baseline = sampleAll(opt.Watch)
	s.gen = []Watched{{PID: os.Getpid(), Label: "generator"}}
	go s.printer()
	first := 0
	for i := range procs {
		r := rooms / procs
		if i < rooms%procs {
			r++
		}
		n := min(r*opt.Shard.RoomSize, opt.Conns-first)
		cfg := opt.Shard
		cfg.Conns, cfg.FirstConn = n, first
		first += n
		l, err := s.startShard(ctx, cfg, procs > 1)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.mu.Lock()
		s.links = append(s.links, l)
		if l.cmd != nil {
			s.gen = append(s.gen, Watched{PID: l.cmd.Process.Pid, Label: "generator"})
		}
		s.mu.Unlock()
	}
	var connect, join Histogram
	for _, l := range s.links {
		m, err := l.await(ctx, "ready")
		if err != nil {
			s.Close()
			return nil, err
		}
		r := m.Ready
		s.Connect.Established += r.Live
		s.Connect.Failed += r.Failed
		connect.MergeSparse(r.Connect)
		join.MergeSparse(r.Join)
		s.Connect.Seconds = max(s.Connect.Seconds, r.Took.Seconds())
	}
	s.Connect.Target = opt.Conns
	s.Connect.ConnectMs, s.Connect.JoinMs = quantiles(&connect), quantiles(&join)
	now := sampleAll(opt.Watch)
	for i, w := range opt.Watch {
		s.Connect.Servers = append(s.Connect.Servers, usage(w, s.baseline[i], s.baseline[i], now[i]))
	}
	s.setPhase("idle")
	return s, nil
}

func (s *Session) setPhase(p string) {
	s.mu.Lock()
	s.phase = p
	s.mu.Unlock()
}

// printer writes a progress line each time every shard has sent its
// tick of the second (or 1.5 s passed), and keeps the timeline.
func (s *Session) printer() {
	defer close(s.printed)
	var prev Counters
	prevAt := time.Now()
	prevS := sampleAll(s.opt.Watch)
	prevG := sampleAll(s.genWatch())
	line := int64(0)
	for {
		line++
		timeout := time.NewTimer(1500 * time.Millisecond)
	wait:
		for {
			select {
			case <-s.stop:
				timeout.Stop()
				return
			case <-timeout.C:
				break wait
			case <-s.ticked:
				s.mu.Lock()
				links := s.links
				s.mu.Unlock()
				all := len(links) > 0
				for _, l := range links {
					if l.ticks.Load() < line {
						all = false
					}
				}
				if all {
					timeout.Stop()
					break wait
				}
			}
		}
		var c Counters
		var live, failed int64
		s.mu.Lock()
		links := s.links
		s.mu.Unlock()
		for _, l := range links {
			if n := l.ticks.Load(); n > line {
				line = n // catch up after a timeout
			}
		}
		for _, l := range links {
			l.mu.Lock()
			c = c.add(l.last.C)
			live += l.last.Live
			failed += l.last.Failed
			l.mu.Unlock()
		}
		now := time.Now()
		dt := now.Sub(prevAt).Seconds()
		cur := sampleAll(s.opt.Watch)
		var cpu, rss float64
		for i, w := range s.opt.Watch {
			u := usage(w, prevS[i], prevS[i], cur[i])
			cpu += u.CPUPercent
			rss += u.RSSMiB
		}
		gw := s.genWatch()
		curG := sampleAll(gw)
		gen := 0.0
		if len(prevG) == len(curG) {
			for i, w := range gw {
				gen += usage(w, prevG[i], prevG[i], curG[i]).CPUPercent
			}
		}
		prevG = curG
		s.mu.Lock()
		h := s.pending
		s.pending = &Histogram{}
		phase := s.phase
		d := c.sub(prev)
		p := Point{T: now.Sub(s.start).Seconds(), Phase: phase, Conns: live,
			SentPS: float64(d.Sent) / dt, DeliveredPS: float64(d.Delivered) / dt,
			P50: float64(h.Quantile(0.5)) / 1000, P99: float64(h.Quantile(0.99)) / 1000, Max: float64(h.Max()) / 1000,
			Errors:     c.SendErrors + c.ErrorEvents + c.Disconnects + failed,
			CPUPercent: cpu, RSSMiB: rss, GenCPU: gen}
		s.timeline = append(s.timeline, p)
		s.mu.Unlock()
		prev, prevAt, prevS = c, now, cur
		if s.opt.Progress != nil {
			line := fmt.Sprintf("%s %4.0fs %-7s conns %6d  sent/s %7.0f  delivered/s %8.0f  p50 %7.1fms  p99 %7.1fms  errors %d",
				s.opt.Label, p.T, phase, live, p.SentPS, p.DeliveredPS, p.P50, p.P99, p.Errors)
			if len(s.opt.Watch) > 0 {
				line += fmt.Sprintf("  server cpu %3.0f%%  rss %.0fMiB", cpu, rss)
			}
			line += fmt.Sprintf("  generator cpu %3.0f%%", gen)
			fmt.Fprintln(s.opt.Progress, strings.TrimSpace(line))
		}
	}
}

// Step sends rate events per second (all shards together) for d, waits for
// the deliveries in flight, and returns what happened.
func (s *Session) Step(ctx context.Context, rate float64, d time.Duration) (StepResult, error) {
	s.setPhase("send")
	defer s.setPhase("idle")
	a := sampleAll(s.opt.Watch)
	gw := s.genWatch()
	ga := sampleAll(gw)
	for _, l := range s.links {
		share := rate * float64(l.conns) / float64(s.opt.Conns)
		if err := l.send(ctlMsg{Cmd: "step", Rate: share, Duration: d}); err != nil {
			return StepResult{}, err
		}
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
	b := sampleAll(s.opt.Watch)
	gb := sampleAll(gw)
	s.setPhase("drain")
	res := StepResult{Rate: rate}
	var h Histogram
	var sending time.Duration
	for _, l := range s.links {
		m, err := l.await(ctx, "step")
		if err != nil {
			return res, err
		}
		st := m.Step
		res.Counters = res.Counters.add(st.C)
		h.MergeSparse(st.Latency)
		sending = max(sending, st.Sending)
		res.Behind += st.Behind
		res.Conns += st.Live
	}
	res.Seconds = sending.Seconds()
	if res.Seconds > 0 {
		res.SentPerSec = float64(res.Counters.Sent) / res.Seconds
		res.DeliveredPerSec = float64(res.Counters.Delivered) / res.Seconds
	}
	res.Lost = res.Counters.Lost()
	res.LatencyMs = quantiles(&h)
	for i, w := range s.opt.Watch {
		u := usage(w, s.baseline[i], a[i], b[i])
		res.Servers = append(res.Servers, u)
		res.ServerCPU += u.CPUPercent
	}
	for i, w := range gw {
		u := usage(w, ga[i], ga[i], gb[i])
		res.GeneratorCPU += u.CPUPercent
		res.GeneratorCores += u.CPUCores
	}
	res.GeneratorProcs = len(gw)
	return res, nil
}

// Final is what a whole session did.
type Final struct {
	Counters  Counters       `json:"counters"`
	Lost      int64          `json:"lost"`
	LatencyMs Quantiles      `json:"latency_ms"`
	Errors    map[string]int `json:"errors,omitempty"`
}

// Stop closes every connection, ends the shards and returns the totals.
func (s *Session) Stop(ctx context.Context) (Final, error) {
	var f Final
	var h Histogram
	f.Errors = map[string]int{}
	var firstErr error
	for _, l := range s.links {
		_ = l.send(ctlMsg{Cmd: "stop"})
	}
	for _, l := range s.links {
		m, err := l.await(ctx, "final")
		if err != nil {
			firstErr = cmpErr(firstErr, err)
			continue
		}
		f.Counters = f.Counters.add(m.Final.C)
		h.MergeSparse(m.Final.Latency)
		for k, v := range m.Final.Errors {
			f.Errors[k] += v
		}
	}
	f.Lost = f.Counters.Lost()
	f.LatencyMs = quantiles(&h)
	s.Close()
	return f, firstErr
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func (s *Session) genWatch() []Watched {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Watched(nil), s.gen...)
}

// Timeline returns one point per second so far.
func (s *Session) Timeline() []Point {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Point(nil), s.timeline...)
}

// Servers samples the watched processes now, with CPU since the session
// started.
func (s *Session) Servers() []ProcUsage {
	now := sampleAll(s.opt.Watch)
	out := make([]ProcUsage, len(s.opt.Watch))
	for i, w := range s.opt.Watch {
		out[i] = usage(w, s.baseline[i], s.baseline[i], now[i])
	}
	return out
}

// Close ends the shards (their processes too) without collecting results.
func (s *Session) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.printed
	for _, l := range s.links {
		_ = l.w.Close()
		if l.cmd != nil {
			done := make(chan struct{})
			go func() { _ = l.cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = l.cmd.Process.Kill()
				<-done
			}
		}
	}
}
