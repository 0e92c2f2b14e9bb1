package bench

import (
	"bufio"
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

	"github.com/redis/go-redis/v9"
)

// Profiled is a roomstream process that serves /debug/pprof.
type Profiled struct {
	Label string
	URL   string
}

// profiling captures, during one step of max, a CPU profile of every
// connector and worker (their /debug/pprof/profile) and Redis's
// INFO commandstats before and after, so that the next person sees where
// the time of an event goes.
type profiling struct {
	st     *Stack
	dir    string
	name   string
	before map[string]cmdStat
	wg     sync.WaitGroup
	files  []string
	errs   []string
	mu     sync.Mutex
}

// cmdStat is one line of INFO commandstats.
type cmdStat struct {
	calls, usec float64
}

func startProfiling(ctx context.Context, st *Stack, dir, name string, window time.Duration) *profiling {
	pr := &profiling{st: st, dir: dir, name: name}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		pr.errs = append(pr.errs, err.Error())
		return pr
	}
	pr.before, _ = commandStats(ctx, st.Redis)
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
// commands by time spent (events: the inbound events of the step).
func (pr *profiling) finish(ctx context.Context, w io.Writer, events float64) {
	pr.wg.Wait()
	after, err := commandStats(ctx, pr.st.Redis)
	if err != nil {
		pr.errs = append(pr.errs, "redis commandstats: "+err.Error())
	}
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
	if after == nil || pr.before == nil {
		return
	}
	type row struct {
		cmd         string
		calls, usec float64
	}
	var rows []row
	var total float64
	for cmd, a := range after {
		b := pr.before[cmd]
		if r := (row{cmd, a.calls - b.calls, a.usec - b.usec}); r.calls > 0 {
			rows = append(rows, r)
			total += r.usec
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].usec > rows[j].usec })
	var lines strings.Builder
	fmt.Fprintf(&lines, "profile      redis INFO commandstats over the step: %.0f ms in commands", total/1000)
	if events > 0 {
		fmt.Fprintf(&lines, ", %.1f µs per inbound event", total/events)
	}
	fmt.Fprintln(&lines)
	fmt.Fprintf(&lines, "    %-14s %10s %10s %14s %10s\n", "command", "calls", "µs/call", "calls/event", "% of time")
	for i, r := range rows {
		if i == 12 {
			break
		}
		perEvent := 0.0
		if events > 0 {
			perEvent = r.calls / events
		}
		fmt.Fprintf(&lines, "    %-14s %10.0f %10.2f %14.2f %9.1f%%\n", r.cmd, r.calls, r.usec/r.calls, perEvent, 100*r.usec/total)
	}
	fmt.Fprint(w, lines.String())
}

// commandStats reads INFO commandstats: calls and microseconds per
// command.
func commandStats(ctx context.Context, url string) (map[string]cmdStat, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, err
	}
	out := map[string]cmdStat{}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		line, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "cmdstat_")
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
	return out, sc.Err()
}
