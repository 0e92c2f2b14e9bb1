package browser

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/roomstream/roomstream/e2e/harness"
	"github.com/roomstream/roomstream/e2e/testkit"
	"github.com/roomstream/roomstream/infra/testredis"
)

// roomstreamBinary builds the roomstream binary once per test run.
func roomstreamBinary(t *testing.T) string {
	t.Helper()
	return harness.Binary(t)
}

// process is a roomstream process started by a test, with its log.
type process struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  bytes.Buffer
	done chan struct{}
}

// startProcess runs the binary with args and env (added to a copy of the
// test's environment without any ROOMSTREAM_ variable), and waits until a
// line of its log matches re; it returns the first submatch.
func startProcess(t *testing.T, bin string, args, env []string, re *regexp.Regexp) (*process, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ROOMSTREAM_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	testredis.KillWithParent(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start roomstream %s: %v", strings.Join(args, " "), err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line + "\n")
			p.mu.Unlock()
			if m := re.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	go func() {
		_ = cmd.Wait()
		_ = pw.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })
	select {
	case m := <-found:
		return p, m
	case <-p.done:
		t.Fatalf("roomstream %s exited early:\n%s", strings.Join(args, " "), p.Log())
	case <-time.After(30 * time.Second):
		t.Fatalf("roomstream %s printed no line matching %s in 30 s:\n%s", strings.Join(args, " "), re, p.Log())
	}
	return nil, ""
}

// Log returns everything the process printed so far.
func (p *process) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// stop asks the process to shut down (SIGINT) and kills it after 10 s.
func (p *process) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Errorf("roomstream did not stop within 10 s of SIGINT; killing it")
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitReady polls url until it answers 200.
func waitReady(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := testkit.WaitReady(ctx, url, nil); err != nil {
		t.Fatalf("%s not ready within 30 s: %v", url, err)
	}
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
