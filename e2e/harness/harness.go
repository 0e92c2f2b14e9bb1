// Package harness runs roomstream as real processes for end-to-end tests:
// it builds the binary once (and, for a rolling upgrade, the binary of an
// earlier commit), starts connectors and workers on free loopback ports
// against a given Redis, waits for /readyz, and kills, stops, restarts or
// replaces them on demand. Process output goes to a log file per
// process, printed when the test fails.
package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/roomstream/roomstream/e2e/testkit"
	"github.com/roomstream/roomstream/infra/testredis"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error

	// builtAt are the binaries BinaryAt built, by commit.
	builtMu sync.Mutex
	builtAt = map[string]string{}
)

// Binary builds the roomstream binary (with -race when the tests run with
// it) once per test process and returns its path.
func Binary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		root, err := repoRoot()
		if err != nil {
			buildErr = err
			return
		}
		buildPath, buildErr = build(root)
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return buildPath
}

// BinaryAt builds the roomstream binary of an earlier commit of this
// repository (a rolling upgrade runs it beside the current one), once per
// test process, and returns its path. The commit must be in the clone:
// a shallow one may lack it, and the test then fails saying how to fetch
// it.
func BinaryAt(tb testing.TB, commit string) string {
	tb.Helper()
	builtMu.Lock()
	defer builtMu.Unlock()
	if bin, ok := builtAt[commit]; ok {
		return bin
	}
	root, err := gitRepo()
	if err != nil {
		tb.Fatal(err)
	}
	if out, err := exec.Command("git", "-C", root, "cat-file", "-e", commit+"^{commit}").CombinedOutput(); err != nil {
		tb.Fatalf("commit %s is not in this clone (%v %s): fetch it, e.g. `git fetch --unshallow` or `git fetch origin %s`", commit, err, bytes.TrimSpace(out), commit)
	}
	src, err := os.MkdirTemp("", "roomstream-src-")
	if err != nil {
		tb.Fatal(err)
	}
	defer os.RemoveAll(src)
	archive := exec.Command("sh", "-c", `git -C "$1" archive "$2" | tar -x -C "$3"`, "sh", root, commit, src)
	if out, err := archive.CombinedOutput(); err != nil {
		tb.Fatalf("extract commit %s: %v\n%s", commit, err, out)
	}
	bin, err := build(src)
	if err != nil {
		tb.Fatalf("build commit %s: %v", commit, err)
	}
	builtAt[commit] = bin
	return bin
}

// repoRoot is the directory of the module under test.
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// GitRepoEnv names the git checkout BinaryAt takes earlier commits from,
// when the module under test is not one (the mutation check runs the
// tests in a copy without .git).
const GitRepoEnv = "ROOMSTREAM_GIT_REPO"

// gitRepo is the git checkout of the module under test.
func gitRepo() (string, error) {
	if dir := os.Getenv(GitRepoEnv); dir != "" {
		return dir, nil
	}
	return repoRoot()
}

// build builds the module in dir into a temporary directory of its own.
func build(dir string) (string, error) {
	out, err := os.MkdirTemp("", "roomstream-e2e-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(out, "roomstream")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, b)
	}
	return bin, nil
}

// Main runs a test package's tests and removes the binaries Binary and
// BinaryAt built; call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if buildPath != "" {
		_ = os.RemoveAll(filepath.Dir(buildPath))
	}
	for _, bin := range builtAt {
		_ = os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

// Env is the environment shared by a deployment's processes.
type Env map[string]string

// With returns a copy of e with more variables.
func (e Env) With(kv ...string) Env {
	out := Env{}
	for k, v := range e {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// Proc is one roomstream process.
type Proc struct {
	tb   testing.TB
	Name string
	Kind string // connector, worker, hooks or dev
	Port int
	// AdminPort serves a connector's /metrics (ROOMSTREAM_ADMIN_ADDR);
	// workers and dev serve them on Port.
	AdminPort int
	bin       string
	env       Env
	logPath   string

	mu     sync.Mutex // guards cmd and exited
	cmd    *exec.Cmd
	exited chan struct{}
}

// URL is the process's HTTP base URL.
func (p *Proc) URL() string { return "http://127.0.0.1:" + strconv.Itoa(p.Port) }

// AdminURL is where the process serves /metrics.
func (p *Proc) AdminURL() string {
	if p.AdminPort != 0 {
		return "http://127.0.0.1:" + strconv.Itoa(p.AdminPort)
	}
	return p.URL()
}

// StartConnector starts `roomstream connector` and waits until it is ready.
func StartConnector(tb testing.TB, name string, env Env) *Proc {
	tb.Helper()
	return StartConnectorWith(tb, Binary(tb), name, env)
}

// StartConnectorWith is StartConnector running the binary bin.
func StartConnectorWith(tb testing.TB, bin, name string, env Env) *Proc {
	tb.Helper()
	p := &Proc{tb: tb, Name: name, Kind: "connector", Port: testredis.FreePort(tb), AdminPort: testredis.FreePort(tb), bin: bin}
	p.env = env.With("ROOMSTREAM_HTTP_ADDR", "127.0.0.1:"+strconv.Itoa(p.Port), "ROOMSTREAM_CONNECTOR_ID", name,
		"ROOMSTREAM_ADMIN_ADDR", "127.0.0.1:"+strconv.Itoa(p.AdminPort))
	p.start()
	return p
}

// StartWorker starts `roomstream worker` and waits until it is ready.
func StartWorker(tb testing.TB, name string, env Env) *Proc {
	tb.Helper()
	return StartWorkerWith(tb, Binary(tb), name, env)
}

// StartWorkerWith is StartWorker running the binary bin.
func StartWorkerWith(tb testing.TB, bin, name string, env Env) *Proc {
	tb.Helper()
	p := &Proc{tb: tb, Name: name, Kind: "worker", Port: testredis.FreePort(tb), bin: bin}
	p.env = env.With("ROOMSTREAM_WORKER_HTTP_ADDR", "127.0.0.1:"+strconv.Itoa(p.Port), "ROOMSTREAM_WORKER_ID", name)
	p.start()
	return p
}

func (p *Proc) start() {
	p.tb.Helper()
	if p.logPath == "" {
		p.logPath = filepath.Join(p.tb.TempDir(), p.Name+".log")
		p.tb.Cleanup(func() {
			p.Kill()
			if p.tb.Failed() {
				p.tb.Logf("--- last lines of %s:\n%s", p.Name, p.tail(60))
			}
		})
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.tb.Fatal(err)
	}
	cmd := exec.Command(p.bin, p.Kind)
	cmd.Env = os.Environ()
	for k, v := range p.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	testredis.KillWithParent(cmd)
	if err := cmd.Start(); err != nil {
		p.tb.Fatalf("start %s: %v", p.Name, err)
	}
	p.mu.Lock()
	p.cmd = cmd
	p.mu.Unlock()
	exited := make(chan struct{})
	p.mu.Lock()
	p.exited = exited
	p.mu.Unlock()
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	if err := p.WaitReady(30 * time.Second); err != nil {
		p.tb.Fatalf("%s: %v\n%s", p.Name, err, p.tail(40))
	}
}

// StartDev starts `roomstream dev` (connector and worker in one process,
// embedded Redis unless env sets ROOMSTREAM_REDIS_URL) and waits until it is
// ready.
func StartDev(tb testing.TB, name string, env Env) *Proc {
	tb.Helper()
	p := &Proc{tb: tb, Name: name, Kind: "dev", Port: testredis.FreePort(tb), bin: Binary(tb)}
	p.env = env.With("ROOMSTREAM_HTTP_ADDR", "127.0.0.1:"+strconv.Itoa(p.Port))
	p.start()
	return p
}

// WaitReady polls /readyz until it answers 200.
func (p *Proc) WaitReady(d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	err := testkit.WaitReady(ctx, p.URL()+"/readyz", func() error {
		if !p.Running() {
			return errors.New("exited before it was ready")
		}
		return nil
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("not ready after %s", d)
	}
	return err
}

// take returns the running command and forgets it (nil when none).
func (p *Proc) take() (*exec.Cmd, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	return cmd, exited
}

// Kill ends the process with SIGKILL, as a crash would.
func (p *Proc) Kill() {
	cmd, exited := p.take()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// Stop sends SIGTERM and waits for a graceful exit (killing after d).
// It returns how long the exit took.
func (p *Proc) Stop(d time.Duration) time.Duration {
	cmd, exited := p.take()
	if cmd == nil {
		return 0
	}
	start := time.Now()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(d):
		p.tb.Errorf("%s did not exit within %s of SIGTERM", p.Name, d)
		_ = cmd.Process.Kill()
		<-exited
	}
	return time.Since(start)
}

// Restart starts a stopped or killed process again on the same port.
func (p *Proc) Restart() {
	p.tb.Helper()
	p.Kill()
	p.start()
}

// Replace stops the process with SIGTERM (as Stop, within d), then starts
// the binary bin in its place, on the same ports with the same
// environment, as a rolling upgrade does. It returns how long the exit
// took and how long the new process took to be ready.
func (p *Proc) Replace(bin string, d time.Duration) (exit, ready time.Duration) {
	p.tb.Helper()
	exit = p.Stop(d)
	p.bin = bin
	start := time.Now()
	p.start()
	return exit, time.Since(start)
}

// Running reports whether the process is alive.
func (p *Proc) Running() bool {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return false
	}
	select {
	case <-exited:
		return false
	default:
		return true
	}
}

// Logs returns everything the process wrote.
func (p *Proc) Logs() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

func (p *Proc) tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.Logs(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Metric returns the value of an unlabelled metric from /metrics (or the
// sum over its labels), -1 when absent.
func (p *Proc) Metric(ctx context.Context, name string) float64 {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.AdminURL()+"/metrics", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(res.Body)
	sum, found := 0.0, false
	for _, line := range strings.Split(buf.String(), "\n") {
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != ' ' && line[len(name)] != '{') {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum, found = sum+v, true
		}
	}
	if !found {
		return -1
	}
	return sum
}

// MetricAtLeast polls Metric until it reaches min or d has passed, and
// returns the last value: counters move a moment after what the client
// sees (a worker counts an event once its outbound write returned).
func (p *Proc) MetricAtLeast(ctx context.Context, name string, min float64, d time.Duration) float64 {
	deadline := time.Now().Add(d)
	for {
		v := p.Metric(ctx, name)
		if v >= min || time.Now().After(deadline) || ctx.Err() != nil {
			return v
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Bin is the path of the roomstream binary the process runs.
func (p *Proc) Bin() string { return p.bin }

// PID is the process id (0 when not running).
func (p *Proc) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}
