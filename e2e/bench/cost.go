package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// What a step cost, per process role: CPU time from /proc (utime + stime
// over the sending window) divided by the inbound events and by the
// deliveries of the step, and Redis's INFO commandstats per event. These
// show which tier to work on, and compare stacks per unit of work rather
// than per machine.

// StepCost is what one step of max cost.
type StepCost struct {
	// ServerCores is how many cores the servers had: 1 when pinned, else
	// every core of the machine.
	ServerCores float64 `json:"server_cores"`
	// EventsPerCore and DeliveriesPerCore are what the step sustained per
	// server core.
	EventsPerCore     float64 `json:"inbound_per_s_per_server_core"`
	DeliveriesPerCore float64 `json:"deliveries_per_s_per_server_core"`
	// Roles is every server process by role (redis, connector-0,
	// worker-0, node-0, ...); Servers is their sum.
	Roles     map[string]RoleCost `json:"roles"`
	Servers   RoleCost            `json:"servers"`
	Generator GeneratorCost       `json:"generator"`
	Redis     *RedisCost          `json:"redis_commands,omitempty"`
}

// RoleCost is one process's (or a sum's) CPU over a step.
type RoleCost struct {
	CPUCores      float64 `json:"cpu_cores"` // cores busy on average (1 = one core)
	UsPerEvent    float64 `json:"cpu_us_per_event"`
	UsPerDelivery float64 `json:"cpu_us_per_delivery"`
}

// GeneratorCost is what the load generator's own processes used.
type GeneratorCost struct {
	Processes int    `json:"processes"`
	Cores     string `json:"cores"` // the CPUs it may use
	RoleCost
	// BusyPercent is its CPU as a share of the cores it may use: over
	// generatorBusyLimit, the step has no result.
	BusyPercent float64 `json:"busy_percent_of_its_cores"`
}

// generatorBusyLimit is how busy the generator's cores may be in a step
// that counts: busier, it may be what limits the step.
const generatorBusyLimit = 80

// stepCost computes a step's cost from its CPU readings; serverCores and
// genCores are the cores each side may use.
func stepCost(res *StepResult, serverCores, genCores []int, cores int) *StepCost {
	per := func(cpu float64) RoleCost {
		rc := RoleCost{CPUCores: cpu}
		if res.SentPerSec > 0 {
			rc.UsPerEvent = cpu * 1e6 / res.SentPerSec
		}
		if res.DeliveredPerSec > 0 {
			rc.UsPerDelivery = cpu * 1e6 / res.DeliveredPerSec
		}
		return rc
	}
	c := &StepCost{ServerCores: float64(cores), Roles: map[string]RoleCost{}}
	if len(serverCores) > 0 {
		c.ServerCores = float64(len(serverCores))
	}
	c.EventsPerCore, c.DeliveriesPerCore = res.SentPerSec/c.ServerCores, res.DeliveredPerSec/c.ServerCores
	total := 0.0
	for _, u := range res.Servers {
		c.Roles[u.Label] = per(u.CPUCores)
		total += u.CPUCores
	}
	c.Servers = per(total)
	gen := float64(cores)
	c.Generator.Cores = "any"
	if len(genCores) > 0 {
		gen = float64(len(genCores))
		c.Generator.Cores = formatCPUs(genCores)
	}
	c.Generator.Processes = res.GeneratorProcs
	c.Generator.RoleCost = per(res.GeneratorCores)
	c.Generator.BusyPercent = 100 * res.GeneratorCores / gen
	return c
}

// roles returns the role names of a cost, Redis first, then in order.
func (c *StepCost) roles() []string {
	var out []string
	for r := range c.Roles {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i] == "redis") != (out[j] == "redis") {
			return out[i] == "redis"
		}
		return out[i] < out[j]
	})
	return out
}

// printCost writes a step's cost per role on a few lines.
func printCost(w io.Writer, indent string, c *StepCost) {
	if c == nil {
		return
	}
	fmt.Fprintf(w, "%scpu µs per event / per delivery:", indent)
	for _, r := range c.roles() {
		rc := c.Roles[r]
		fmt.Fprintf(w, "  %s %.1f / %.2f (%.2f cores)", r, rc.UsPerEvent, rc.UsPerDelivery, rc.CPUCores)
	}
	fmt.Fprintf(w, "  = servers %.1f / %.2f\n", c.Servers.UsPerEvent, c.Servers.UsPerDelivery)
	g := c.Generator
	fmt.Fprintf(w, "%sgenerator: %d process(es) on core %s, %.0f%% busy, %.2f µs per delivery\n",
		indent, g.Processes, g.Cores, g.BusyPercent, g.UsPerDelivery)
	if rd := c.Redis; rd != nil {
		fmt.Fprintf(w, "%sredis commands per event (calls, µs):", indent)
		for i, name := range rd.top() {
			if i == 6 {
				break
			}
			cc := rd.Commands[name]
			fmt.Fprintf(w, "  %s %.2f %.1f", name, cc.CallsPerEvent, cc.UsPerEvent)
		}
		fmt.Fprintln(w)
	}
}

// RedisCost is Redis's INFO commandstats over a step, per inbound event.
// A command a function or script runs is counted on its own line too,
// and its time is also in the time of the FCALL or EVALSHA that ran it:
// the lines do not add up.
type RedisCost struct {
	Events   float64                `json:"events"`
	Commands map[string]CommandCost `json:"commands"`
}

// CommandCost is one command of INFO commandstats over a step.
type CommandCost struct {
	Calls         float64 `json:"calls"`
	CallsPerEvent float64 `json:"calls_per_event"`
	UsPerEvent    float64 `json:"us_per_event"`
	UsPerCall     float64 `json:"us_per_call"`
}

// top returns the commands by time spent, most first.
func (rc *RedisCost) top() []string {
	var out []string
	for k := range rc.Commands {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := rc.Commands[out[i]], rc.Commands[out[j]]
		if a.UsPerEvent != b.UsPerEvent {
			return a.UsPerEvent > b.UsPerEvent
		}
		return out[i] < out[j]
	})
	return out
}

// cmdStat is one line of INFO commandstats.
type cmdStat struct {
	calls, usec float64
}

// redisCost is what happened between two INFO commandstats readings, per
// inbound event.
func redisCost(before, after map[string]cmdStat, events float64) *RedisCost {
	rc := &RedisCost{Events: events, Commands: map[string]CommandCost{}}
	for name, a := range after {
		b := before[name]
		calls, usec := a.calls-b.calls, a.usec-b.usec
		if calls <= 0 {
			continue
		}
		cc := CommandCost{Calls: calls, UsPerCall: usec / calls}
		if events > 0 {
			cc.CallsPerEvent, cc.UsPerEvent = calls/events, usec/events
		}
		rc.Commands[name] = cc
	}
	return rc
}

// statsClient reads a stack's INFO commandstats over one connection.
type statsClient struct{ rdb *redis.Client }

func newStatsClient(url string) (*statsClient, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	opt.PoolSize = 1
	return &statsClient{rdb: redis.NewClient(opt)}, nil
}

func (sc *statsClient) Close() error { return sc.rdb.Close() }

// read reads INFO commandstats: calls and microseconds per command.
func (sc *statsClient) read(ctx context.Context) (map[string]cmdStat, error) {
	info, err := sc.rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, err
	}
	out := map[string]cmdStat{}
	s := bufio.NewScanner(strings.NewReader(info))
	for s.Scan() {
		line, ok := strings.CutPrefix(strings.TrimSpace(s.Text()), "cmdstat_")
		if !ok {
			continue
		}
		name, fields, _ := strings.Cut(line, ":")
		var st cmdStat
		for _, kv := range strings.Split(fields, ",") {
			k, v, _ := strings.Cut(kv, "=")
			f, _ := strconv.ParseFloat(v, 64)
			switch k {
			case "calls":
				st.calls = f
			case "usec":
				st.usec = f
			}
		}
		out[name] = st
	}
	return out, s.Err()
}
