package testredis

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestRun: a server of Run answers, says its pid, and Close stops it and
// removes the directory Run made for it.
func TestRun(t *testing.T) {
	Binary(t) // fails with what to install when redis-server is missing
	s, err := Run(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := s.Client()
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("ping %s: %v", s.URL(), err)
	}
	if s.PID() == 0 {
		t.Error("no pid for a running server")
	}
	select {
	case <-s.Exited():
		t.Fatal("the server exited while running")
	default:
	}
	s.Close()
	select {
	case <-s.Exited():
	case <-time.After(time.Second):
		t.Fatal("the server still runs after Close")
	}
	if _, err := os.Stat(s.Dir); !os.IsNotExist(err) {
		t.Errorf("%s left behind after Close: %v", s.Dir, err)
	}
}

// TestRunKeepsAGivenDir: Run writes its data and log in the directory it
// is given and leaves it there.
func TestRunKeepsAGivenDir(t *testing.T) {
	Binary(t)
	dir := t.TempDir()
	s, err := Run(&Options{Dir: dir, Args: []string{"--maxclients", "100"}})
	if err != nil {
		t.Fatal(err)
	}
	c := s.Client()
	defer c.Close()
	if got, err := c.ConfigGet(context.Background(), "maxclients").Result(); err != nil || got["maxclients"] != "100" {
		t.Errorf("maxclients %v (%v), want the given argument 100", got, err)
	}
	s.Close()
	if _, err := os.Stat(s.LogFile()); err != nil || s.Dir != dir {
		t.Errorf("log %s in %s, want it kept in %s: %v", s.LogFile(), s.Dir, dir, err)
	}
}
