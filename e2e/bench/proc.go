package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/<pid>/stat
// (100 on every Linux this runs on).
const clockTicks = 100

// ProcSample is one reading of a process from /proc.
type ProcSample struct {
	PID  int
	CPU  time.Duration // user + system time since the process started
	RSS  int64         // resident set size, bytes
	Peak int64         // peak resident set size (VmHWM), bytes
	At   time.Time
}

// ReadProc reads the CPU time and memory of a process from /proc.
func ReadProc(pid int) (ProcSample, error) {
	s := ProcSample{PID: pid, At: time.Now()}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return s, err
	}
	// The command name (field 2) may hold spaces: fields are counted after
	// its closing parenthesis. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, fmt.Errorf("bench: /proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return s, fmt.Errorf("bench: /proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return s, fmt.Errorf("bench: /proc/%d/stat: %w", pid, err)
	}
	s.CPU = time.Duration(ut+st) * time.Second / clockTicks
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) < 1 {
			continue
		}
		kb, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			continue
		}
		if k == "VmRSS" {
			s.RSS = kb << 10
		} else {
			s.Peak = kb << 10
		}
	}
	return s, nil
}

// FindProcs returns the processes (other than this one) whose command line
// contains pattern, e.g. "redis-server" or "roomstream connector". On a
// shared machine prefer explicit PIDs: patterns can match other people's
// processes.
func FindProcs(pattern string) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(b) == 0 {
			continue
		}
		cmd := strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
		// Match on the program's base name and its arguments.
		if j := strings.IndexByte(cmd, ' '); j > 0 {
			prog := cmd[:j]
			if k := strings.LastIndexByte(prog, '/'); k >= 0 {
				cmd = prog[k+1:] + cmd[j:]
			}
		} else if k := strings.LastIndexByte(cmd, '/'); k >= 0 {
			cmd = cmd[k+1:]
		}
		if strings.Contains(cmd, pattern) {
			out = append(out, pid)
		}
	}
	return out, nil
}

// procName returns the command name of a process (its comm).
func procName(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

// Watched is a server process whose CPU and memory a run reports.
type Watched struct {
	PID   int    `json:"pid"`
	Label string `json:"label"`
}

// ProcUsage is what one process used over a measured window.
type ProcUsage struct {
	PID   int    `json:"pid"`
	Label string `json:"label"`
	// CPUPercent is the CPU time used over the window as a percentage of
	// the whole machine (all cores): 100 means every core was busy.
	CPUPercent float64 `json:"cpu_percent_of_machine"`
	// CPUCores is the same in cores (1.0 = one core busy).
	CPUCores float64 `json:"cpu_cores"`
	RSSMiB   float64 `json:"rss_mib"`
	PeakMiB  float64 `json:"peak_rss_mib"`
	// StartRSSMiB is the resident size when the run began.
	StartRSSMiB float64 `json:"start_rss_mib"`
}

// usage computes a process's usage between two samples.
func usage(w Watched, start, a, b ProcSample) ProcUsage {
	u := ProcUsage{PID: w.PID, Label: w.Label, RSSMiB: mib(b.RSS), PeakMiB: mib(b.Peak), StartRSSMiB: mib(start.RSS)}
	if wall := b.At.Sub(a.At); wall > 0 {
		u.CPUCores = float64(b.CPU-a.CPU) / float64(wall)
		u.CPUPercent = 100 * u.CPUCores / float64(runtime.NumCPU())
	}
	return u
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// sampleAll reads every watched process; a process that is gone gives a
// zero sample.
func sampleAll(ws []Watched) []ProcSample {
	out := make([]ProcSample, len(ws))
	for i, w := range ws {
		s, err := ReadProc(w.PID)
		if err != nil {
			s = ProcSample{PID: w.PID, At: time.Now()}
		}
		out[i] = s
	}
	return out
}

// loadAvg returns the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
