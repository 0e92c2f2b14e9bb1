package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/roomstream/roomstream/infra/ports"
	"github.com/roomstream/roomstream/infra/testredis"
)

// Stack is a set of server processes started on loopback for a scenario:
// one redis-server and either roomstream connectors and workers, or the
// Node peer's processes.
type Stack struct {
	Name  string // "roomstream" or "node"
	URLs  []string
	Watch []Watched
	Dir   string // logs and Redis data
	// Redis is the URL of the stack's redis-server; Profiled lists the
	// roomstream processes that serve /debug/pprof (ROOMSTREAM_PPROF).
	Redis    string
	Profiled []Profiled
	procs    []*proc
	redis    *testredis.Server
	keep     bool
	cpus     []int // where every process runs (nil: anywhere)
}

type proc struct {
	addr   string // where it listens
	label  string
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
}

// StackOptions configure a stack.
type StackOptions struct {
	Secret string
	// Server is the roomstream binary the connectors and workers run
	// ("": roomstream in the directory of this program, else on $PATH).
	Server string
	// Connectors and Workers size a roomstream stack.
	Connectors, Workers int
	// Env adds ROOMSTREAM_* variables to every roomstream process.
	Env []string
	// NodeProcs is the number of Node peer processes; PeerDir holds its
	// server.js and package-lock.json.
	NodeProcs int
	PeerDir   string
	// KeepLogs leaves the stack's directory in place.
	KeepLogs bool
	// CPUs pins every process of the stack, Redis included, to these
	// cores (nil: not pinned).
	CPUs []int
	// Log receives what the stack does (nil: os.Stderr).
	Log io.Writer
}

func (o *StackOptions) log() io.Writer {
	if o.Log == nil {
		return os.Stderr
	}
	return o.Log
}

func newStack(name string, o StackOptions) (*Stack, error) {
	dir, err := os.MkdirTemp("", "roomstream-bench-"+name+"-")
	if err != nil {
		return nil, err
	}
	return &Stack{Name: name, Dir: dir, keep: o.KeepLogs, cpus: o.CPUs}, nil
}

// serverBinary finds the roomstream binary: path if set, else roomstream
// beside this program (bin/roomstream next to bin/roombench), else
// roomstream on $PATH.
func serverBinary(path string) (string, error) {
	if path != "" {
		return path, nil
	}
	if exe, err := os.Executable(); err == nil {
		beside := filepath.Join(filepath.Dir(exe), "roomstream")
		if fi, err := os.Stat(beside); err == nil && !fi.IsDir() {
			return beside, nil
		}
	}
	p, err := exec.LookPath("roomstream")
	if err != nil {
		return "", errors.New("bench: no roomstream binary beside this program nor on $PATH (build it with `go tool task build`, or pass --server)")
	}
	return p, nil
}

// StartRoomstream starts redis-server, the workers and the connectors,
// and waits until the connectors are ready and every partition has an
// owner.
func StartRoomstream(ctx context.Context, o StackOptions) (st *Stack, err error) {
	st, err = newStack("roomstream", o)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			st.Close()
			err = fmt.Errorf("%w (logs in %s)", err, st.Dir)
			st = nil
		}
	}()
	redisURL, err := st.startRedis(ctx)
	if err != nil {
		return st, err
	}
	st.Redis = redisURL
	exe, err := serverBinary(o.Server)
	if err != nil {
		return st, err
	}
	base := append([]string{"ROOMSTREAM_REDIS_URL=" + redisURL, "ROOMSTREAM_JWT_SECRET=" + o.Secret,
		"ROOMSTREAM_LOG_LEVEL=warn",
		// The load comes from a few loopback addresses at load-test
		// rates, and bench users open many sockets.
		"ROOMSTREAM_MAX_CONNS_PER_IP=0", "ROOMSTREAM_CONNECT_RATE=0", "ROOMSTREAM_MAX_CONNS_PER_USER=0",
		"ROOMSTREAM_MAX_ROOMS_PER_USER=0",
		// Every member of a bench room uploads at once (the Node stack
		// has no such limit): a room may hold as many uploads as members
		// (ROOMSTREAM_ROOM_MAX_MEMBERS' default).
		"ROOMSTREAM_ROOM_MAX_UPLOADS=500"}, o.Env...)
	var workerPorts []int
	for i := range max(1, o.Workers) {
		port, err := ports.Free(0)
		if err != nil {
			return st, err
		}
		env := slices.Concat(base, []string{"ROOMSTREAM_WORKER_HTTP_ADDR=127.0.0.1:" + strconv.Itoa(port), "ROOMSTREAM_WORKER_ID=bench-w" + strconv.Itoa(i)})
		if _, err := st.start(ctx, fmt.Sprintf("worker-%d", i), env, exe, "worker"); err != nil {
			return st, err
		}
		if err := st.waitHTTP(ctx, port, "/readyz", 30*time.Second); err != nil {
			return st, err
		}
		workerPorts = append(workerPorts, port)
		st.Profiled = append(st.Profiled, Profiled{Label: fmt.Sprintf("worker-%d", i), URL: "http://127.0.0.1:" + strconv.Itoa(port)})
	}
	for i := range max(1, o.Connectors) {
		port, err := ports.Free(0)
		if err != nil {
			return st, err
		}
		admin, err := ports.Free(0)
		if err != nil {
			return st, err
		}
		adminURL := "http://127.0.0.1:" + strconv.Itoa(admin)
		env := slices.Concat(base, []string{"ROOMSTREAM_HTTP_ADDR=127.0.0.1:" + strconv.Itoa(port), "ROOMSTREAM_CONNECTOR_ID=bench-c" + strconv.Itoa(i),
			"ROOMSTREAM_ADMIN_ADDR=127.0.0.1:" + strconv.Itoa(admin)})
		p, err := st.start(ctx, fmt.Sprintf("connector-%d", i), env, exe, "connector")
		if err != nil {
			return st, err
		}
		if err := st.waitHTTP(ctx, port, "/readyz", 30*time.Second); err != nil {
			return st, err
		}
		p.addr = adminURL // metrics and profiles are served there
		st.URLs = append(st.URLs, "http://127.0.0.1:"+strconv.Itoa(port))
		st.Profiled = append(st.Profiled, Profiled{Label: fmt.Sprintf("connector-%d", i), URL: adminURL})
	}
	// Events flow once every partition has an owner.
	partitions := 16
	for _, kv := range base {
		if v, ok := strings.CutPrefix(kv, "ROOMSTREAM_PARTITIONS="); ok {
			partitions, _ = strconv.Atoi(v)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		owned := 0.0
		for _, p := range workerPorts {
			owned += metric(ctx, p, "roomstream_worker_partitions_owned")
		}
		if int(owned) >= partitions {
			st.describe(o.log())
			break
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("workers own %.0f of %d partitions after 30s", owned, partitions)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return st, nil
}

// StartNode installs the Node peer's packages when needed (npm ci), then
// starts redis-server and the Node processes, one port each, all sharing
// Redis through @socket.io/redis-streams-adapter.
func StartNode(ctx context.Context, o StackOptions) (st *Stack, err error) {
	dir, err := filepath.Abs(o.PeerDir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "server.js")); err != nil {
		return nil, fmt.Errorf("bench: no Node peer in %s (run from the repository root or pass --peer-dir): %w", dir, err)
	}
	if err := NpmInstall(ctx, dir, o.log()); err != nil {
		return nil, err
	}
	st, err = newStack("node", o)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			st.Close()
			err = fmt.Errorf("%w (logs in %s)", err, st.Dir)
			st = nil
		}
	}()
	redisURL, err := st.startRedis(ctx)
	if err != nil {
		return st, err
	}
	st.Redis = redisURL
	for i := range max(1, o.NodeProcs) {
		port, err := ports.Free(0)
		if err != nil {
			return st, err
		}
		env := []string{"PORT=" + strconv.Itoa(port), "REDIS_URL=" + redisURL, "JWT_SECRET=" + o.Secret}
		if _, err := st.start(ctx, fmt.Sprintf("node-%d", i), env, "node", filepath.Join(dir, "server.js")); err != nil {
			return st, err
		}
		if err := st.waitHTTP(ctx, port, "/healthz", 30*time.Second); err != nil {
			return st, err
		}
		st.URLs = append(st.URLs, "http://127.0.0.1:"+strconv.Itoa(port))
	}
	st.describe(o.log())
	return st, nil
}

// describe prints the stack's processes.
func (st *Stack) describe(w io.Writer) {
	fmt.Fprintf(w, "%s stack (logs in %s):", st.Name, st.Dir)
	if st.redis != nil {
		fmt.Fprintf(w, " redis pid %d %s;", st.redis.PID(), st.redis.URL())
	}
	for _, p := range st.procs {
		fmt.Fprintf(w, " %s pid %d %s;", p.label, p.cmd.Process.Pid, p.addr)
	}
	fmt.Fprintln(w)
}

// NpmInstall runs `npm ci` in dir unless node_modules matches
// package-lock.json already.
func NpmInstall(ctx context.Context, dir string, log io.Writer) error {
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return fmt.Errorf("bench: %s has no package-lock.json: %w", dir, err)
	}
	installed, err := os.ReadFile(filepath.Join(dir, "node_modules", ".package-lock.json"))
	if err == nil && sameDeps(lock, installed) {
		return nil
	}
	fmt.Fprintf(log, "installing the Node peer's packages: npm ci (in %s)\n", dir)
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("bench: npm ci in %s: %w", dir, err)
	}
	return nil
}

// sameDeps compares the "packages" sections' versions loosely: npm writes
// node_modules/.package-lock.json from package-lock.json, so the version
// lines of the installed packages are a subset of the lock's.
func sameDeps(lock, installed []byte) bool {
	want := map[string]bool{}
	for _, l := range strings.Split(string(lock), "\n") {
		if strings.Contains(l, `"version"`) || strings.Contains(l, `"node_modules/`) {
			want[strings.TrimSpace(l)] = true
		}
	}
	for _, l := range strings.Split(string(installed), "\n") {
		if (strings.Contains(l, `"version"`) || strings.Contains(l, `"node_modules/`)) && !want[strings.TrimSpace(l)] {
			return false
		}
	}
	return true
}

// startRedis starts a private redis-server on a free loopback port, its
// data and log (redis.log) in the stack's directory; it is watched like
// the servers and stopped after them.
func (st *Stack) startRedis(context.Context) (string, error) {
	srv, err := testredis.Run(&testredis.Options{Dir: st.Dir, Args: []string{"--maxclients", "10000"}})
	if err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	st.redis = srv
	st.Watch = append(st.Watch, Watched{PID: srv.PID(), Label: "redis"})
	if len(st.cpus) > 0 {
		// testredis starts redis-server itself: it is moved, every
		// thread, once running.
		if err := pinPID(srv.PID(), st.cpus); err != nil {
			return "", fmt.Errorf("bench: pin redis-server: %w", err)
		}
	}
	return srv.URL(), nil
}

// start runs a process with its output in a log file.
func (st *Stack) start(ctx context.Context, label string, env []string, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(st.Dir, label+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := command(st.cpus, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", label, err)
	}
	p := &proc{label: label, cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.exited) }()
	st.procs = append(st.procs, p)
	st.Watch = append(st.Watch, Watched{PID: cmd.Process.Pid, Label: label})
	return p, nil
}

// waitHTTP polls a path of a process until it answers 200.
func (st *Stack) waitHTTP(ctx context.Context, port int, path string, d time.Duration) error {
	p := st.procs[len(st.procs)-1]
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited: %s", p.label, tail(p.log, 20))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		res, err := client.Get("http://127.0.0.1:" + strconv.Itoa(port) + path)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				p.addr = "http://127.0.0.1:" + strconv.Itoa(port)
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %s: %s", p.label, d, tail(p.log, 20))
}

// Check reports a process of the stack that exited.
func (st *Stack) Check() error {
	if st.redis != nil {
		select {
		case <-st.redis.Exited():
			return fmt.Errorf("redis exited during the run: %s", tail(st.redis.LogFile(), 20))
		default:
		}
	}
	for _, p := range st.procs {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited during the run: %s", p.label, tail(p.log, 20))
		default:
		}
	}
	return nil
}

// Close stops every process (SIGTERM, then SIGKILL) and removes the
// stack's directory unless logs are kept.
func (st *Stack) Close() {
	for i := len(st.procs) - 1; i >= 0; i-- {
		p := st.procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
	st.procs = nil
	if st.redis != nil {
		st.redis.Close()
		st.redis = nil
	}
	if !st.keep {
		_ = os.RemoveAll(st.Dir)
	}
}

// goMem sums the Go runtime figures of the connectors, per connection.
func (st *Stack) goMem(ctx context.Context, conns int64) *GoMem {
	g := &GoMem{}
	for _, p := range st.procs {
		if !strings.HasPrefix(p.label, "connector") {
			continue
		}
		port, _ := strconv.Atoi(p.addr[strings.LastIndexByte(p.addr, ':')+1:])
		g.StackKiB += metric(ctx, port, "go_memstats_stack_inuse_bytes")
		g.HeapInuseKiB += metric(ctx, port, "go_memstats_heap_inuse_bytes")
		g.HeapAllocKiB += metric(ctx, port, "go_memstats_heap_alloc_bytes")
		g.GoroutinesPer += metric(ctx, port, "go_goroutines")
	}
	n := float64(conns)
	g.StackKiB, g.HeapInuseKiB, g.HeapAllocKiB, g.GoroutinesPer = g.StackKiB/1024/n, g.HeapInuseKiB/1024/n, g.HeapAllocKiB/1024/n, g.GoroutinesPer/n
	return g
}

// metric returns the sum of a metric's samples from /metrics (0 when
// absent).
func metric(ctx context.Context, port int, name string) float64 {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(port)+"/metrics", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != ' ' && line[len(name)] != '{') {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
