package bench

import (
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestCPULists(t *testing.T) {
	for _, tc := range []struct {
		in   string
		cpus []int
	}{{"0", []int{0}}, {"0-1", []int{0, 1}}, {"0-2,4,6-7", []int{0, 1, 2, 4, 6, 7}}} {
		got, err := parseCPUs(tc.in)
		if err != nil || !slices.Equal(got, tc.cpus) || formatCPUs(got) != tc.in {
			t.Errorf("parseCPUs(%q) = %v, %v; formatted back %q", tc.in, got, err, formatCPUs(got))
		}
	}
	for _, bad := range []string{"", "a", "3-1", "1-"} {
		if _, err := parseCPUs(bad); err == nil {
			t.Errorf("parseCPUs(%q): no error", bad)
		}
	}
	mine, err := allowedCPUs(os.Getpid())
	if err != nil || len(mine) == 0 {
		t.Fatalf("allowedCPUs: %v, %v", mine, err)
	}
	if all := threadCPUs(os.Getpid()); len(all) < len(mine) {
		t.Errorf("threads may run on %v, fewer than the main thread's %v", all, mine)
	}
	if pl, why := planPinning(false); pl != nil || !strings.Contains(why, "not pinned") {
		t.Errorf("planPinning(false) = %v, %q", pl, why)
	}
	pl, why := planPinning(true)
	switch {
	case len(mine) < 2 && (pl != nil || !strings.Contains(why, "cannot pin")):
		t.Errorf("one core: planPinning(true) = %v, %q", pl, why)
	case len(mine) >= 2 && pl != nil && (!slices.Equal(pl.servers, mine[len(mine)-1:]) || !slices.Equal(pl.generator, mine[:len(mine)-1])):
		t.Errorf("plan: servers %v, generator %v, of %v", pl.servers, pl.generator, mine)
	}
	if cmd := command([]int{1}, "redis-server", "--port", "0"); strings.Join(cmd.Args, " ") != "taskset -c 1 redis-server --port 0" {
		t.Errorf("pinned command %q", cmd.Args)
	}
	if cmd := command(nil, "node", "server.js"); strings.Join(cmd.Args, " ") != "node server.js" {
		t.Errorf("unpinned command %q", cmd.Args)
	}
}

// TestPlanAfterPinningSelf holds a second run of one invocation (peer's
// rooms of 100 after its rooms of 10) to the first run's plan: the first
// run pinned roombench to the generator's cores, and the second must not
// plan from those alone.
func TestPlanAfterPinningSelf(t *testing.T) {
	mine, err := allowedCPUs(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if len(mine) < 2 {
		t.Skip("one core: nothing to pin")
	}
	first, why := planPinning(true)
	if first == nil {
		t.Skip(why)
	}
	procs := runtime.GOMAXPROCS(0)
	t.Cleanup(func() {
		runtime.GOMAXPROCS(procs)
		if err := pinPID(os.Getpid(), mine); err != nil {
			t.Errorf("restoring the test's cores: %v", err)
		}
	})
	if err := first.pinSelf(); err != nil {
		t.Fatal(err)
	}
	second, why := planPinning(true)
	if second == nil || !slices.Equal(second.servers, first.servers) || !slices.Equal(second.generator, first.generator) {
		t.Errorf("after pinning itself: plan %+v (%s), want %+v", second, why, first)
	}
}
