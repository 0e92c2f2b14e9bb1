package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Profiled is a roomstream process that serves /debug/pprof.
type Profiled struct {
	Label string
	URL   string
}

// profiling captures, during one step of max, a CPU profile of every
// connector and worker (their /debug/pprof/profile), so that the next
// person sees where the time of an event goes; the step's Redis
// commandstats are printed with them.
type profiling struct {
	st    *Stack
	dir   string
	name  string
	wg    sync.WaitGroup
	files []string
	errs  []string
	mu    sync.Mutex
}

func startProfiling(ctx context.Context, st *Stack, dir, name string, window time.Duration) *profiling {
	pr := &profiling{st: st, dir: dir, name: name}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		pr.errs = append(pr.errs, err.Error())
		return pr
	}
	secs := max(1, int((window-2*time.Second)/time.Second))
	for _, t := range st.Profiled {
		file := filepath.Join(dir, fmt.Sprintf("%s-%s.pprof", t.Label, name))
		pr.wg.Add(1)
		go func() {
			defer pr.wg.Done()
			if err := fetchProfile(ctx, t.URL+"/debug/pprof/profile?seconds="+strconv.Itoa(secs), file); err != nil {
				pr.mu.Lock()
				pr.errs = append(pr.errs, fmt.Sprintf("%s: %v", t.Label, err))
				pr.mu.Unlock()
				return
			}
			pr.mu.Lock()
			pr.files = append(pr.files, file)
			pr.mu.Unlock()
		}()
	}
	return pr
}

func fetchProfile(ctx context.Context, url, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s (is ROOMSTREAM_PPROF=true set?)", url, res.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// finish waits for the profiles and prints the top of each, and Redis's
// commands by time spent over the step (nil: not read).
func (pr *profiling) finish(ctx context.Context, w io.Writer, rc *RedisCost) {
	pr.wg.Wait()
	fmt.Fprintf(w, "profile      step %s/s: files in %s\n", pr.name, pr.dir)
	for _, e := range pr.errs {
		fmt.Fprintf(w, "profile      error: %s\n", e)
	}
	sort.Strings(pr.files)
	for _, f := range pr.files {
		out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=15", f).CombinedOutput()
		if err != nil {
			fmt.Fprintf(w, "profile      %s: go tool pprof: %v\n", filepath.Base(f), err)
			continue
		}
		fmt.Fprintf(w, "profile      %s (go tool pprof -top):\n", filepath.Base(f))
		for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
			fmt.Fprintf(w, "    %s\n", line)
		}
	}
	if rc == nil {
		return
	}
	total := 0.0
	for _, c := range rc.Commands {
		total += c.UsPerCall * c.Calls
	}
	var lines strings.Builder
	fmt.Fprintf(&lines, "profile      redis INFO commandstats over the step (%.0f inbound events; a function's commands are also in its FCALL's time):\n", rc.Events)
	fmt.Fprintf(&lines, "    %-14s %10s %10s %14s %12s %10s\n", "command", "calls", "µs/call", "calls/event", "µs/event", "% of time")
	for i, name := range rc.top() {
		if i == 12 {
			break
		}
		c := rc.Commands[name]
		fmt.Fprintf(&lines, "    %-14s %10.0f %10.2f %14.2f %12.1f %9.1f%%\n", name, c.Calls, c.UsPerCall, c.CallsPerEvent, c.UsPerEvent, 100*c.UsPerCall*c.Calls/total)
	}
	fmt.Fprint(w, lines.String())
}
