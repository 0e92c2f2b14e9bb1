package containers

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Balancer is a plain TCP load balancer on a loopback port, as a
// deployment puts in front of its connectors (no sticky sessions): each
// new connection goes to the next live backend, round robin, skipping
// backends that refuse. When a backend dies its connections end, and the
// clients' reconnections land on the others.
type Balancer struct {
	ln       net.Listener
	backends func() []string
	next     atomic.Uint64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
}

// NewBalancer listens on 127.0.0.1 and forwards to backends() (host:port).
func NewBalancer(t testing.TB, backends func() []string) *Balancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &Balancer{ln: ln, backends: backends, conns: map[net.Conn]struct{}{}}
	b.wg.Add(1)
	go b.serve()
	t.Cleanup(b.Close)
	return b
}

// URL is the balancer's base URL.
func (b *Balancer) URL() string { return "http://" + b.ln.Addr().String() }

func (b *Balancer) serve() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			b.forward(c)
		}()
	}
}

func (b *Balancer) track(c net.Conn, on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if on {
		b.conns[c] = struct{}{}
	} else {
		delete(b.conns, c)
	}
}

func (b *Balancer) forward(c net.Conn) {
	defer c.Close()
	list := b.backends()
	var up net.Conn
	for i := 0; i < len(list) && up == nil; i++ {
		addr := list[int(b.next.Add(1))%len(list)]
		up, _ = net.DialTimeout("tcp", addr, 2*time.Second)
	}
	if up == nil {
		return
	}
	defer up.Close()
	b.track(c, true)
	b.track(up, true)
	defer b.track(c, false)
	defer b.track(up, false)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// One side ended: end both, as a TCP balancer does when a
		// backend goes away.
		_ = dst.Close()
		_ = src.Close()
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
}

// Close stops accepting and ends every forwarded connection.
func (b *Balancer) Close() {
	_ = b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		_ = c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}
