package bench

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"strings"
	"time"
)

// Max is scenario 2: raise the inbound rate step by step until p99 passes
// the limit or anything is lost, duplicated or reordered; the result is
// the highest delivered messages/s of a passing step. After the first
// failing step, Refine more steps bisect between the last pass and the
// failure. A step whose generator was too busy (generatorBusyLimit) has
// no result and ends the search: the best step is then a lower bound.
func Max(ctx context.Context, target string, p *Params) (*Report, error) {
	if err := p.place(); err != nil {
		return nil, err
	}
	st, err := StartStack(ctx, target, p)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	r := &Report{Scenario: "max", Target: target, Machine: machine()}
	r.fill(st, p)
	r.Config.Rate, r.Config.Duration = 0, p.StepDuration.String()
	label := fmt.Sprintf("[max %s, rooms of %d]", target, p.RoomSize)
	opt := p.options(st.URLs, st.Watch, label)
	// After an overloaded step, wait for the backlog to be delivered so
	// that it does not spill into the next step.
	opt.Shard.Drain = 30 * time.Second
	s, err := Start(ctx, opt)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	r.Connections = s.Connect
	r.Pinning = p.pinning(st.Watch, s.genWatch())
	m := &maxRun{p: p, st: st, s: s, r: r, label: label, target: target,
		limit: float64(p.P99Limit) / float64(time.Millisecond)}
	m.run = m.step
	if st.Redis != "" {
		if m.stats, err = newStatsClient(st.Redis); err != nil {
			return nil, err
		}
		defer m.stats.Close()
	}
	sleepCtx(ctx, 2*time.Second)
	if err := m.search(ctx); err != nil {
		return nil, err
	}
	if best := r.Best; best != nil {
		r.Messages, r.LatencyMs = messages(*best), &best.LatencyMs
		r.Servers, r.ServerCPU, r.GeneratorCPU = best.Servers, best.ServerCPU, best.GeneratorCPU
	}
	r.Final, err = s.Stop(ctx)
	r.Timeline = s.Timeline()
	r.Machine.LoadAfter = loadAvg()
	return r, err
}

// maxRun is one run of max against a stack.
type maxRun struct {
	p      *Params
	st     *Stack
	s      *Session
	r      *Report
	stats  *statsClient // the stack's Redis, for INFO commandstats
	label  string
	target string
	limit  float64 // p99 limit, ms
	// run runs one step (m.step; tests put their own).
	run func(ctx context.Context, rate float64) (StepResult, error)
}

// search runs the steps: up the ladder until a step fails, then bisects.
func (m *maxRun) search(ctx context.Context) error {
	p, r := m.p, m.r
	var best *StepResult
	lo, failAt := 0.0, 0.0
	for i := 0; ; i++ {
		rate := p.StartRate + float64(i)*p.StepRate
		if rate > p.MaxRate*(1+1e-9) {
			r.Stopped = fmt.Sprintf("reached --max-rate (%.0f/s) without a failure: the best step is a lower bound", p.MaxRate)
			break
		}
		if ctx.Err() != nil {
			r.Stopped = "interrupted"
			break
		}
		res, err := m.run(ctx, rate)
		if err != nil {
			return err
		}
		if res.GeneratorBound {
			r.Stopped = fmt.Sprintf("generator-bound at %.0f/s (%s): the best step is a lower bound", rate, res.Why)
			break
		}
		if !res.Pass {
			failAt = rate
			r.Stopped = fmt.Sprintf("failed at %.0f/s: %s", rate, res.Why)
			break
		}
		best, lo = &res, rate
	}
	for range p.Refine {
		if failAt == 0 || ctx.Err() != nil {
			break
		}
		mid := roundRate((lo + failAt) / 2)
		if mid <= lo || mid >= failAt {
			break
		}
		res, err := m.run(ctx, mid)
		if err != nil {
			return err
		}
		switch {
		case res.GeneratorBound:
			r.Stopped += fmt.Sprintf("; bisection stopped, generator-bound at %.0f/s", mid)
			failAt = 0
		case res.Pass:
			best, lo = &res, mid
		default:
			failAt = mid
			r.Stopped = fmt.Sprintf("failed at %.0f/s: %s", mid, res.Why)
		}
	}
	r.Best = best
	return nil
}

// roundRate rounds a bisection's rate to what a step can tell apart.
func roundRate(x float64) float64 {
	if x >= 100 {
		return math.Round(x)
	}
	return math.Round(x*10) / 10
}

// step runs one step at rate (again, if it fails, up to p.Retries times),
// measures what it cost and judges it.
func (m *maxRun) step(ctx context.Context, rate float64) (StepResult, error) {
	p, st, r := m.p, m.st, m.r
	var res StepResult
	for try := 0; ; try++ {
		var prof *profiling
		if p.Profile != "" && m.target == "roomstream" {
			prof = startProfiling(ctx, st, p.Profile, fmt.Sprintf("%.0f", rate), p.StepDuration)
		}
		before := m.commandStats(ctx)
		var err error
		res, err = m.s.Step(ctx, rate, p.StepDuration)
		if err != nil {
			return res, err
		}
		res.Cost = stepCost(&res, p.serverCPUs(), p.generatorCPUs(), runtime.NumCPU())
		if after := m.commandStats(ctx); before != nil && after != nil {
			res.Cost.Redis = redisCost(before, after, float64(res.Counters.Sent))
		}
		if prof != nil {
			prof.finish(ctx, p.Out, res.Cost.Redis)
		}
		judge(&res, m.limit, p.RoomSize)
		if generatorBound(&res) {
			break
		}
		if res.Pass || try >= p.Retries || st.Check() != nil || ctx.Err() != nil {
			break
		}
		// On a shared machine another process can stall the servers for
		// a moment; a step fails only if it fails again.
		res.Why = "retried: " + res.Why
		r.Steps = append(r.Steps, res)
		fmt.Fprintf(p.Out, "%s step %.0f/s failed (%s); running it again\n", m.label, rate, strings.TrimPrefix(res.Why, "retried: "))
		sleepCtx(ctx, 2*time.Second)
	}
	if err := st.Check(); err != nil {
		res.Pass, res.GeneratorBound, res.Why = false, false, err.Error()
	}
	r.Steps = append(r.Steps, res)
	fmt.Fprintf(p.Out, "%s step %.0f/s: delivered %.0f/s, p99 %.1fms, lost %d, servers %.2f cores, generator %.0f%% of its cores -> %s\n",
		m.label, rate, res.DeliveredPerSec, res.LatencyMs.P99, res.Lost, res.Cost.Servers.CPUCores, res.Cost.Generator.BusyPercent, verdict(res))
	printCost(p.Out, "    ", res.Cost)
	// Let queues drain between steps, so each step starts clean.
	sleepCtx(ctx, 2*time.Second)
	return res, nil
}

// commandStats reads the stack's INFO commandstats (nil when it cannot).
func (m *maxRun) commandStats(ctx context.Context) map[string]cmdStat {
	if m.stats == nil {
		return nil
	}
	cs, err := m.stats.read(ctx)
	if err != nil {
		fmt.Fprintf(m.p.Out, "%s redis INFO commandstats: %v\n", m.label, err)
		return nil
	}
	return cs
}

// generatorBound marks a step whose generator was busier than
// generatorBusyLimit: it has no result, whatever it measured.
func generatorBound(res *StepResult) bool {
	g := res.Cost.Generator
	if g.BusyPercent <= generatorBusyLimit {
		return false
	}
	res.Pass, res.GeneratorBound = false, true
	res.Why = fmt.Sprintf("the generator's core %s was %.0f%% busy, over %d%%", g.Cores, g.BusyPercent, generatorBusyLimit)
	return true
}

// verdict is how a step ended, for people.
func verdict(s StepResult) string {
	switch {
	case s.GeneratorBound:
		return "GENERATOR-BOUND, no result: " + s.Why
	case strings.HasPrefix(s.Why, "retried: "):
		return "failed, run again: " + strings.TrimPrefix(s.Why, "retried: ")
	case !s.Pass:
		return "FAIL: " + s.Why
	}
	return "pass"
}

// judge decides whether a step was sustained.
func judge(res *StepResult, p99Limit float64, roomSize int) {
	c := res.Counters
	why := []string{}
	if res.LatencyMs.Count == 0 && roomSize > 1 {
		why = append(why, "nothing delivered")
	}
	if res.LatencyMs.P99 >= p99Limit {
		why = append(why, fmt.Sprintf("p99 %.1fms >= %.0fms", res.LatencyMs.P99, p99Limit))
	}
	if res.Lost > 0 {
		why = append(why, fmt.Sprintf("%d lost", res.Lost))
	}
	if c.Dups > 0 {
		why = append(why, fmt.Sprintf("%d duplicated", c.Dups))
	}
	if c.Reordered > 0 {
		why = append(why, fmt.Sprintf("%d reordered", c.Reordered))
	}
	if n := c.ErrorEvents + c.SendErrors + c.Disconnects; n > 0 {
		why = append(why, fmt.Sprintf("%d errors", n))
	}
	if res.SentPerSec < 0.97*res.Rate {
		why = append(why, fmt.Sprintf("only %.0f/s sent (generator or server could not keep up)", res.SentPerSec))
	}
	res.Pass = len(why) == 0
	res.Why = strings.Join(why, ", ")
}
