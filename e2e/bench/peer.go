package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// peerCmd runs max against roomstream, then against the Node stack, for
// each room size, and prints them side by side. The step rates are for
// the first room size; the others' are scaled to the same deliveries per
// second, so that every size steps through the same delivery load.
func peerCmd(ctx context.Context, p *Params) error {
	var reports []*Report
	sizes := p.RoomSizes
	if len(sizes) == 0 {
		sizes = []int{p.RoomSize}
	}
	for _, size := range sizes {
		q := *p
		q.RoomSize = size
		if f := float64(sizes[0]-1) / float64(size-1); f != 1 {
			q.StartRate, q.StepRate, q.MaxRate = p.StartRate*f, p.StepRate*f, p.MaxRate*f
			fmt.Fprintf(p.Out, "rooms of %d: %d deliveries per event; steps of %.1f events/s from %.1f to %.1f, the deliveries/s of rooms of %d\n",
				size, size-1, q.StepRate, q.StartRate, q.MaxRate, sizes[0])
		}
		var pair [2]*Report
		for i, target := range []string{"roomstream", "node"} {
			r, err := Max(ctx, target, &q)
			if r != nil {
				printSummary(p.Out, r)
				reports = append(reports, r)
				pair[i] = r
			}
			if err != nil {
				return err
			}
		}
		commonLoad(pair[0], pair[1])
	}
	printPeerTable(p.Out, reports)
	return finish(p, reports)
}

// commonLoad finds the highest rate both stacks passed and records each
// one's step at that rate: their costs at the same load.
func commonLoad(a, b *Report) {
	if a == nil || b == nil {
		return
	}
	var sa, sb *StepResult
	for i := range a.Steps {
		x := &a.Steps[i]
		if !x.Pass {
			continue
		}
		for j := range b.Steps {
			y := &b.Steps[j]
			if y.Pass && math.Abs(x.Rate-y.Rate) <= 1e-6*x.Rate && (sa == nil || x.Rate > sa.Rate) {
				sa, sb = x, y
			}
		}
	}
	a.Common, b.Common = sa, sb
}

// printPeerTable prints peer's results in Markdown, per room size: the
// most each stack held per server core, what each process role cost per
// event and per delivery at its best step and at the common load, Redis's
// commands, and the generator's own CPU.
func printPeerTable(w io.Writer, reports []*Report) {
	fmt.Fprintf(w, "\n%s\n", machineLine(reports))
	var sizes []int
	for _, r := range reports {
		if r != nil && !slices.Contains(sizes, r.Config.RoomSize) {
			sizes = append(sizes, r.Config.RoomSize)
		}
	}
	for _, size := range sizes {
		var rs, node *Report
		for _, r := range reports {
			if r != nil && r.Config.RoomSize == size {
				if r.Target == "roomstream" {
					rs = r
				} else if r.Target == "node" {
					node = r
				}
			}
		}
		printRoomSize(w, size, rs, node)
	}
}

// printRoomSize prints the tables of one room size.
func printRoomSize(w io.Writer, size int, rs, node *Report) {
	fmt.Fprintf(w, "\n### Rooms of %d (%d deliveries per inbound event)\n\n", size, size-1)
	var notes []string
	for _, r := range []*Report{rs, node} {
		if r != nil && r.Pinning != nil && !slices.Contains(notes, r.Pinning.Note) {
			notes = append(notes, r.Pinning.Note)
		}
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "%s.\n", strings.Join(notes, "; "))
	}
	fmt.Fprintln(w, "\n| figure | roomstream | Node stack | ratio roomstream ÷ Node |")
	fmt.Fprintln(w, "|---|---|---|---|")
	type getter func(*Report) (float64, bool)
	row := func(figure string, get getter, format string, lowerBetter bool) {
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
		sa, va, oka := cell(rs)
		sb, vb, okb := cell(node)
		ratio := "–"
		if oka && okb && va > 0 && vb > 0 {
			ratio = fmt.Sprintf("%.2f", va/vb)
		}
		if lowerBetter {
			figure += " (lower is better)"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", figure, sa, sb, ratio)
	}
	best := func(f func(*StepResult) float64) getter {
		return func(r *Report) (float64, bool) {
			if r.Best == nil || r.Best.Cost == nil {
				return 0, false
			}
			return f(r.Best), true
		}
	}
	common := func(f func(*StepResult) float64) getter {
		return func(r *Report) (float64, bool) {
			if r.Common == nil || r.Common.Cost == nil {
				return 0, false
			}
			return f(r.Common), true
		}
	}
	redis := func(s *StepResult) float64 { return s.Cost.Roles["redis"].UsPerEvent }
	row("max inbound msg/s held per server core (p99 < limit, 0 lost, duplicated or reordered)", best(func(s *StepResult) float64 { return s.Cost.EventsPerCore }), "%.0f", false)
	row("max deliveries/s held per server core", best(func(s *StepResult) float64 { return s.Cost.DeliveriesPerCore }), "%.0f", false)
	row("… p99 at that step (ms)", best(func(s *StepResult) float64 { return s.LatencyMs.P99 }), "%.1f", true)
	row("… server CPU µs per inbound event", best(func(s *StepResult) float64 { return s.Cost.Servers.UsPerEvent }), "%.1f", true)
	row("… server CPU µs per delivery", best(func(s *StepResult) float64 { return s.Cost.Servers.UsPerDelivery }), "%.2f", true)
	row("… Redis (redis-server CPU) µs per inbound event", best(redis), "%.1f", true)
	row("… generator CPU (% of its cores)", best(func(s *StepResult) float64 { return s.Cost.Generator.BusyPercent }), "%.0f", true)
	row("common load: inbound msg/s (the highest step both passed)", common(func(s *StepResult) float64 { return s.SentPerSec }), "%.0f", false)
	row("… server CPU µs per inbound event", common(func(s *StepResult) float64 { return s.Cost.Servers.UsPerEvent }), "%.1f", true)
	row("… server CPU µs per delivery", common(func(s *StepResult) float64 { return s.Cost.Servers.UsPerDelivery }), "%.2f", true)
	row("… Redis (redis-server CPU) µs per inbound event", common(redis), "%.1f", true)
	row("… generator CPU (% of its cores)", common(func(s *StepResult) float64 { return s.Cost.Generator.BusyPercent }), "%.0f", true)
	fmt.Fprintln(w)
	for _, r := range []*Report{rs, node} {
		if r != nil && r.Stopped != "" {
			fmt.Fprintf(w, "%s's search ended: %s.\n", stackName(r.Target), r.Stopped)
		}
	}
	fmt.Fprintln(w, "\nCPU per process role: µs per inbound event / µs per delivery (cores busy).")
	fmt.Fprintln(w, "\n| stack | role | at its best step | at the common load |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, r := range []*Report{rs, node} {
		if r == nil {
			continue
		}
		var b, c *StepCost
		if r.Best != nil {
			b = r.Best.Cost
		}
		if r.Common != nil {
			c = r.Common.Cost
		}
		var roles []string
		for _, s := range []*StepCost{b, c} {
			if s != nil {
				for _, role := range s.roles() {
					if !slices.Contains(roles, role) {
						roles = append(roles, role)
					}
				}
			}
		}
		name := stackName(r.Target)
		for _, role := range roles {
			fmt.Fprintf(w, "| %s | %s | %s | %s |\n", name, role, roleCell(b, role), roleCell(c, role))
		}
		fmt.Fprintf(w, "| %s | all servers | %s | %s |\n", name, roleCell(b, ""), roleCell(c, ""))
		fmt.Fprintf(w, "| %s | load generator | %s | %s |\n", name, roleCell(b, "generator"), roleCell(c, "generator"))
	}
	header := "\nRedis commands per inbound event at the common load (INFO commandstats: calls, µs; a function's commands are also in its FCALL's time):\n\n"
	for _, r := range []*Report{rs, node} {
		if r == nil || r.Common == nil || r.Common.Cost == nil || r.Common.Cost.Redis == nil {
			continue
		}
		fmt.Fprint(w, header)
		header = ""
		rc := r.Common.Cost.Redis
		var parts []string
		for i, name := range rc.top() {
			if i == 8 {
				break
			}
			cc := rc.Commands[name]
			parts = append(parts, fmt.Sprintf("%s %.2f, %.1f", name, cc.CallsPerEvent, cc.UsPerEvent))
		}
		fmt.Fprintf(w, "- %s: %s\n", stackName(r.Target), strings.Join(parts, "; "))
	}
	fmt.Fprintln(w)
}

// roleCell is one role's cost in a step ("": all servers; "generator":
// the load generator).
func roleCell(c *StepCost, role string) string {
	if c == nil {
		return "–"
	}
	var rc RoleCost
	switch role {
	case "":
		rc = c.Servers
	case "generator":
		rc = c.Generator.RoleCost
	default:
		var ok bool
		if rc, ok = c.Roles[role]; !ok {
			return "–"
		}
	}
	return fmt.Sprintf("%.1f / %.2f (%.2f)", rc.UsPerEvent, rc.UsPerDelivery, rc.CPUCores)
}

func stackName(target string) string {
	if target == "node" {
		return "Node stack"
	}
	return target
}
