// Package testredis starts private redis-server processes (standalone or
// a Redis Cluster) on free loopback ports for tests, and removes them when
// the test ends; Run starts one for a program instead (the load
// generator), which stops it with Close. It never touches a shared Redis.
package testredis

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/infra/ports"
)

// Binary returns the redis-server to run: $ROOMSTREAM_TEST_REDIS_SERVER or
// the one in PATH. It fails the test with what to do when there is none.
func Binary(tb testing.TB) string {
	tb.Helper()
	p, err := binary()
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func binary() (string, error) {
	if p := os.Getenv("ROOMSTREAM_TEST_REDIS_SERVER"); p != "" {
		return p, nil
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return "", errors.New("redis-server is not installed: run `go tool task test` (it installs it), or `apt-get install -y redis-server redis-tools`")
	}
	return p, nil
}

// Server is one redis-server process.
type Server struct {
	tb   testing.TB // nil for a server started by Run
	bin  string
	Port int
	Dir  string
	args []string
	cmd  *exec.Cmd     // nil while the server is killed
	done chan struct{} // closed once the running process has ended
	// ownDir: Run made Dir, and Close removes it.
	ownDir bool
}

// Options of Start and Run.
type Options struct {
	// AOF turns on append-only persistence with fsync always, so that a
	// restart keeps every acknowledged write.
	AOF bool
	// Args are extra redis-server arguments ("--name", "value", ...).
	Args []string
	// Dir holds the server's data and its log (redis.log). Default: a
	// new temporary directory, removed with the test (Start) or by Close
	// (Run).
	Dir string
}

// Start starts a redis-server on a free loopback port; it is killed when
// the test ends.
func Start(tb testing.TB, opts *Options) *Server {
	tb.Helper()
	o := Options{}
	if opts != nil {
		o = *opts
	}
	if o.Dir == "" {
		o.Dir = tb.TempDir()
	}
	s := newServer(Binary(tb), o)
	if err := s.startOnFreePort(); err != nil {
		tb.Fatalf("start redis-server: %v", err)
	}
	s.tb = tb
	tb.Cleanup(s.Kill)
	return s
}

// Run starts a redis-server on a free loopback port, like Start, for a
// program rather than a test: failures are returned, and the caller stops
// the server with Close.
func Run(opts *Options) (*Server, error) {
	bin, err := binary()
	if err != nil {
		return nil, err
	}
	o := Options{}
	if opts != nil {
		o = *opts
	}
	own := o.Dir == ""
	if own {
		if o.Dir, err = os.MkdirTemp("", "roomstream-redis-"); err != nil {
			return nil, err
		}
	}
	s := newServer(bin, o)
	s.ownDir = own
	if err := s.startOnFreePort(); err != nil {
		if own {
			_ = os.RemoveAll(o.Dir)
		}
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	return s, nil
}

func newServer(bin string, o Options) *Server {
	s := &Server{bin: bin, Dir: o.Dir}
	s.args = []string{"--bind", "127.0.0.1", "--save", "", "--dir", s.Dir, "--protected-mode", "no"}
	if o.AOF {
		s.args = append(s.args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		s.args = append(s.args, "--appendonly", "no")
	}
	s.args = append(s.args, o.Args...)
	return s
}

// startOnFreePort starts the server on a free port, trying a few: another
// process may take a port between the check that it is free and the
// server's bind.
func (s *Server) startOnFreePort() error {
	for attempt := 0; ; attempt++ {
		port, err := ports.Free(10000)
		if err != nil {
			return err
		}
		s.Port = port
		err = s.start()
		if err == nil {
			return nil
		}
		if attempt == 5 {
			return err
		}
	}
}

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// URL is the redis:// URL of the server.
func (s *Server) URL() string { return "redis://" + s.Addr() }

func (s *Server) start() error {
	args := append([]string{"--port", strconv.Itoa(s.Port)}, s.args...)
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.Dir
	logf, err := os.OpenFile(s.LogFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	KillWithParent(cmd)
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(done) }()
	s.cmd, s.done = cmd, done
	failed := func(why string) error {
		s.Kill()
		log, _ := os.ReadFile(s.LogFile())
		return fmt.Errorf("redis-server on port %d %s: %s", s.Port, why, tail(string(log)))
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		c := redis.NewClient(&redis.Options{Addr: s.Addr(), DialTimeout: 200 * time.Millisecond})
		err := c.Ping(context.Background()).Err()
		_ = c.Close()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return failed("did not answer")
		case <-time.After(20 * time.Millisecond):
		}
	}
	return failed("did not answer")
}

// LogFile is the path of the server's log.
func (s *Server) LogFile() string { return filepath.Join(s.Dir, "redis.log") }

// PID is the process id of the running server (0 while it is killed).
func (s *Server) PID() int {
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Exited is closed when the server's process has ended, killed or not.
func (s *Server) Exited() <-chan struct{} { return s.done }

// Kill stops the server at once (SIGKILL), as a crash would.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Close stops the server as an operator would (SIGTERM; SIGKILL after 15
// s), and removes its directory when Run made it. Closing twice is
// harmless.
func (s *Server) Close() {
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
			s.cmd = nil
		case <-time.After(15 * time.Second):
			s.Kill()
		}
	}
	if s.ownDir {
		_ = os.RemoveAll(s.Dir)
	}
}

// Restart kills the server and starts it again on the same port and data
// directory (with AOF, acknowledged writes survive). Start and Restart
// are for servers of Start (they fail the test).
func (s *Server) Restart() {
	s.tb.Helper()
	s.Kill()
	if err := s.start(); err != nil {
		s.tb.Fatalf("restart redis-server: %v", err)
	}
}

// Start starts a killed server again.
func (s *Server) Start() {
	s.tb.Helper()
	if err := s.start(); err != nil {
		s.tb.Fatalf("start redis-server: %v", err)
	}
}

// Client returns a go-redis client for the server, closed with the test
// (the caller closes it for a server of Run).
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	if s.tb != nil {
		s.tb.Cleanup(func() { _ = c.Close() })
	}
	return c
}

// FreePort returns a loopback port that was free a moment ago and whose
// cluster bus port (port+10000) is too, both below the ephemeral range
// (see package ports).
func FreePort(tb testing.TB) int {
	tb.Helper()
	p, err := ports.Free(10000)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func tail(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return strings.Join(lines, "\n")
}
