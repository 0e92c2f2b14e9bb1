package bench

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Pinning keeps the load generator off the servers' core. On a machine of
// a few cores a generator that shares the servers' cores competes with
// them, and the maximum then measures the generator as much as the
// servers. Pinned, every server process (Redis included, every thread)
// runs on one core and the generator's processes on the others, so the
// servers' figures are per server core and the generator's own CPU shows
// whether it was the limit.

// pinPlan is where a pinned run puts its processes.
type pinPlan struct {
	servers   []int // CPUs of every server process
	generator []int // CPUs of the load generator's processes
}

// Pinning is how a run placed its processes (Report.Pinning).
type Pinning struct {
	Pinned bool `json:"pinned"`
	// Note says what was done, or why the run could not pin.
	Note           string `json:"note"`
	ServerCores    string `json:"server_cores,omitempty"`    // e.g. "1"
	GeneratorCores string `json:"generator_cores,omitempty"` // e.g. "0"
	// Roles are the cores each process was allowed to run on, read back
	// from /proc (every thread), by role: redis, connector-0, worker-0,
	// node-0, generator...
	Roles map[string]string `json:"roles,omitempty"`
}

// planPinning decides where a run's processes go: the servers on the last
// of the cores this process may use, the generator on the others. It
// returns nil, and says why, when the run is not pinned.
func planPinning(want bool) (*pinPlan, string) {
	if !want {
		return nil, "not pinned (--pin=false): the servers and the load generator share every core"
	}
	cpus, err := startCPUs()
	if err != nil {
		return nil, "cannot pin: " + err.Error()
	}
	if len(cpus) < 2 {
		return nil, fmt.Sprintf("cannot pin: roombench may use %d core, so the servers and the load generator share it", len(cpus))
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return nil, "cannot pin: taskset (util-linux) is not installed"
	}
	n := len(cpus)
	return &pinPlan{servers: cpus[n-1:], generator: cpus[:n-1]}, ""
}

// startCPUs are the CPUs this process could use before any run pinned it:
// a run pins roombench itself to the generator's cores, and a later run
// of the same invocation (peer's second room size) still plans from all
// of them.
var startCPUs = sync.OnceValues(func() ([]int, error) { return allowedCPUs(os.Getpid()) })

// note describes the plan.
func (pl *pinPlan) note() string {
	return fmt.Sprintf("pinned: every server process (Redis included) on core %s, the load generator on core %s",
		formatCPUs(pl.servers), formatCPUs(pl.generator))
}

// pinSelf moves every thread of this process, and so the processes it
// starts from now on, to the generator's cores, and sizes the Go
// scheduler to them.
func (pl *pinPlan) pinSelf() error {
	if err := pinPID(os.Getpid(), pl.generator); err != nil {
		return err
	}
	runtime.GOMAXPROCS(len(pl.generator))
	return nil
}

// pinning reads back where a run's processes may run.
func (pl *pinPlan) pinning(servers, generator []Watched) *Pinning {
	p := &Pinning{Pinned: true, Note: pl.note(), ServerCores: formatCPUs(pl.servers),
		GeneratorCores: formatCPUs(pl.generator), Roles: map[string]string{}}
	for _, w := range servers {
		p.Roles[w.Label] = formatCPUs(threadCPUs(w.PID))
	}
	var gen []int
	for _, w := range generator {
		gen = append(gen, threadCPUs(w.PID)...)
	}
	slices.Sort(gen)
	p.Roles["generator"] = formatCPUs(slices.Compact(gen))
	return p
}

// command wraps a program so that it starts on cpus (nil: as is).
func command(cpus []int, bin string, args ...string) *exec.Cmd {
	if len(cpus) == 0 {
		return exec.Command(bin, args...)
	}
	return exec.Command("taskset", append([]string{"-c", formatCPUs(cpus), bin}, args...)...)
}

// pinPID moves every thread of a running process to cpus.
func pinPID(pid int, cpus []int) error {
	out, err := exec.Command("taskset", "-a", "-cp", formatCPUs(cpus), strconv.Itoa(pid)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("taskset -a -cp %s %d: %w: %s", formatCPUs(cpus), pid, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// allowedCPUs returns the CPUs a process may run on (its main thread's).
func allowedCPUs(pid int) ([]int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil, err
	}
	return cpusAllowed(b)
}

// threadCPUs returns the CPUs any thread of a process may run on.
func threadCPUs(pid int) []int {
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/status")
	var all []int
	for _, t := range tasks {
		if b, err := os.ReadFile(t); err == nil {
			c, _ := cpusAllowed(b)
			all = append(all, c...)
		}
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// cpusAllowed parses the Cpus_allowed_list line of a /proc status file.
func cpusAllowed(status []byte) ([]int, error) {
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return parseCPUs(strings.TrimSpace(v))
		}
	}
	return nil, errors.New("no Cpus_allowed_list in /proc status")
}

// parseCPUs parses a CPU list: "0-2,4".
func parseCPUs(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("CPU list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("CPU list %q", s)
			}
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	return out, nil
}

// formatCPUs writes a CPU list as taskset reads it: "0-2,4".
func formatCPUs(cpus []int) string {
	var b strings.Builder
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(cpus[i]))
		if j > i {
			b.WriteString("-" + strconv.Itoa(cpus[j]))
		}
		i = j + 1
	}
	return b.String()
}

// announce prints where a run's processes go.
func announce(w io.Writer, pl *pinPlan, why string) {
	if pl != nil {
		fmt.Fprintln(w, pl.note())
		return
	}
	fmt.Fprintln(w, why)
}
