// Package testredis starts private redis-server processes (standalone or
// a Redis Cluster) on free loopback ports for tests, and removes them when
// the test ends. It never touches a shared Redis.
package testredis

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/infra/ports"
)

// Binary returns the redis-server to run: $ROOMSTREAM_TEST_REDIS_SERVER or
// the one in PATH. It fails the test with what to do when there is none.
func Binary(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("ROOMSTREAM_TEST_REDIS_SERVER"); p != "" {
		return p
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("redis-server is not installed: run `go tool task test` (it installs it), or `apt-get install -y redis-server redis-tools`")
	}
	return p
}

// Server is one redis-server process.
type Server struct {
	tb   testing.TB
	bin  string
	Port int
	Dir  string
	args []string
	cmd  *exec.Cmd
}

// Options of Start.
type Options struct {
	// AOF turns on append-only persistence with fsync always, so that a
	// restart keeps every acknowledged write.
	AOF bool
	// Args are extra redis-server arguments ("--name", "value", ...).
	Args []string
}

// Start starts a redis-server on a free loopback port.
func Start(tb testing.TB, opts *Options) *Server {
	tb.Helper()
	if opts == nil {
		opts = &Options{}
	}
	s := &Server{tb: tb, bin: Binary(tb), Dir: tb.TempDir()}
	s.args = []string{"--bind", "127.0.0.1", "--save", "", "--dir", s.Dir, "--protected-mode", "no"}
	if opts.AOF {
		s.args = append(s.args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		s.args = append(s.args, "--appendonly", "no")
	}
	s.args = append(s.args, opts.Args...)
	for attempt := 0; ; attempt++ {
		s.Port = FreePort(tb)
		err := s.start()
		if err == nil {
			break
		}
		if attempt == 5 {
			tb.Fatalf("start redis-server: %v", err)
		}
	}
	tb.Cleanup(s.Kill)
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// URL is the redis:// URL of the server.
func (s *Server) URL() string { return "redis://" + s.Addr() }

func (s *Server) start() error {
	args := append([]string{"--port", strconv.Itoa(s.Port)}, s.args...)
	s.cmd = exec.Command(s.bin, args...)
	s.cmd.Dir = s.Dir
	logf, err := os.OpenFile(filepath.Join(s.Dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	KillWithParent(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c := redis.NewClient(&redis.Options{Addr: s.Addr(), DialTimeout: 200 * time.Millisecond})
		err := c.Ping(context.Background()).Err()
		_ = c.Close()
		if err == nil {
			return nil
		}
		if s.cmd.ProcessState != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	log, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
	return fmt.Errorf("redis-server on port %d did not answer: %s", s.Port, tail(string(log)))
}

// Kill stops the server at once (SIGKILL), as a crash would.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart kills the server and starts it again on the same port and data
// directory (with AOF, acknowledged writes survive).
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

// Client returns a go-redis client for the server, closed with the test.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	s.tb.Cleanup(func() { _ = c.Close() })
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
