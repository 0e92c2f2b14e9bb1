package testredis

import (
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Replica is a redis-server replicating a master through a loopback relay
// that the test can hold: while held, what the master sends never reaches
// the replica (it stays in the relay), as when replication lags behind or
// the link between the two is cut, and the replica does not notice.
type Replica struct {
	*Server
	tb    testing.TB
	ln    net.Listener
	mu    sync.Mutex
	held  bool
	conns []net.Conn
}

// StartReplica starts a replica of master and waits until it is in sync.
func StartReplica(tb testing.TB, master *Server) *Replica {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	r := &Replica{tb: tb, ln: ln}
	tb.Cleanup(func() {
		_ = ln.Close()
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, c := range r.conns {
			_ = c.Close()
		}
	})
	go r.relay(master.Addr())
	port := ln.Addr().(*net.TCPAddr).Port
	r.Server = Start(tb, &Options{Args: []string{"--replicaof", "127.0.0.1", strconv.Itoa(port)}})
	r.WaitInSync(master)
	return r
}

// WaitInSync waits until the replica's link is up and master sees it.
func (r *Replica) WaitInSync(master *Server) {
	r.tb.Helper()
	ctx := context.Background()
	mc, rc := master.Client(), r.Client()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mi, _ := mc.Info(ctx, "replication").Result()
		ri, _ := rc.Info(ctx, "replication").Result()
		if strings.Contains(mi, "connected_slaves:1") && strings.Contains(ri, "master_link_status:up") {
			return
		}
		if time.Now().After(deadline) {
			r.tb.Fatalf("replica not in sync after 10s:\n%s\n%s", mi, ri)
		}
	}
}

// Hold stops passing on what the master sends; the replica keeps its link
// and acknowledges only what it had.
func (r *Replica) Hold() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.held = true
}

// Promote makes the replica a master (REPLICAOF NO ONE), as a failover
// does, and cuts the relay: what was held is lost.
func (r *Replica) Promote() {
	r.tb.Helper()
	r.mu.Lock()
	for _, c := range r.conns {
		_ = c.Close()
	}
	r.mu.Unlock()
	if err := r.Client().Do(context.Background(), "replicaof", "no", "one").Err(); err != nil {
		r.tb.Fatalf("promote the replica: %v", err)
	}
}

func (r *Replica) relay(master string) {
	for {
		down, err := r.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", master)
		if err != nil {
			_ = down.Close()
			continue
		}
		r.mu.Lock()
		r.conns = append(r.conns, down, up)
		r.mu.Unlock()
		go func() { _, _ = io.Copy(up, down); _ = up.Close() }()
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := up.Read(buf)
				if n > 0 {
					r.mu.Lock()
					held := r.held
					r.mu.Unlock()
					if held {
						// Swallowed: from now on the replica falls behind.
						continue
					}
					if _, werr := down.Write(buf[:n]); werr != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			_ = down.Close()
		}()
	}
}
