package bench

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// TestMaxSearch runs max's search over made-up steps: a failure is
// bisected, a generator-bound step ends the search with no result.
func TestMaxSearch(t *testing.T) {
	for _, tc := range []struct {
		name        string
		fail, bound func(rate float64) bool // the step at rate fails, or is generator-bound
		wantBest    float64
		wantRates   []float64
		stopped     string
	}{
		{"fails", atLeast(4000), never, 3750, []float64{1000, 2000, 3000, 4000, 3500, 3750}, "failed at 4000/s: p99"},
		{"fails in bisection", atLeast(3600), never, 3500, []float64{1000, 2000, 3000, 4000, 3500, 3750}, "failed at 3750/s: p99"},
		{"generator-bound", never, atLeast(4000), 3000, []float64{1000, 2000, 3000, 4000}, "generator-bound at 4000/s"},
		{"bound while bisecting", atLeast(4000), func(r float64) bool { return r == 3500 }, 3000, []float64{1000, 2000, 3000, 4000, 3500},
			"failed at 4000/s: p99 120.0ms >= 100ms; bisection stopped, generator-bound at 3500/s"},
		{"never fails", never, never, 5000, []float64{1000, 2000, 3000, 4000, 5000}, "reached --max-rate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Params{StartRate: 1000, StepRate: 1000, MaxRate: 5000, Refine: 2}
			m := &maxRun{p: p, r: &Report{}, limit: 100}
			var rates []float64
			m.run = func(_ context.Context, rate float64) (StepResult, error) {
				rates = append(rates, rate)
				res := StepResult{Rate: rate, SentPerSec: rate, DeliveredPerSec: 9 * rate, LatencyMs: Quantiles{Count: 1, P99: 20}}
				if tc.fail(rate) {
					res.LatencyMs.P99 = 120
				}
				res.Cost = stepCost(&res, []int{1}, []int{0}, 2)
				if tc.bound(rate) {
					res.Cost.Generator.BusyPercent = 85
				}
				judge(&res, m.limit, 10)
				generatorBound(&res)
				return res, nil
			}
			if err := m.search(context.Background()); err != nil {
				t.Fatal(err)
			}
			if m.r.Best == nil || m.r.Best.Rate != tc.wantBest || !slices.Equal(rates, tc.wantRates) {
				t.Errorf("best %v after steps %v; want best %v after %v", m.r.Best, rates, tc.wantBest, tc.wantRates)
			}
			if !strings.HasPrefix(m.r.Stopped, tc.stopped) {
				t.Errorf("stopped %q, want %q...", m.r.Stopped, tc.stopped)
			}
		})
	}
	res := StepResult{Cost: &StepCost{Generator: GeneratorCost{Cores: "0", BusyPercent: 81}}, Pass: true}
	if !generatorBound(&res) || res.Pass || !strings.HasPrefix(verdict(res), "GENERATOR-BOUND, no result: the generator's core 0 was 81% busy") {
		t.Errorf("a step at 81%% of the generator's core: pass %v, %q", res.Pass, verdict(res))
	}
}

func atLeast(x float64) func(float64) bool { return func(r float64) bool { return r >= x } }

func never(float64) bool { return false }
