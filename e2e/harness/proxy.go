package harness

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy is a TCP load balancer for tests, as a deployment puts in front of
// its connectors (no sticky sessions): it forwards each new connection to
// the first of its targets that accepts one, or round robin (NewBalancer),
// skipping targets that refuse (a connector that died). It can also cut
// every open connection at once without a close handshake (RST) and refuse
// new ones for a while: what a client sees when its network drops. Put in
// front of Redis, it can lose the reply to a request (LoseReply).
type Proxy struct {
	ln         net.Listener
	targets    func() []string
	roundRobin bool
	next       atomic.Uint64

	loseReply atomic.Pointer[[]byte] // armed by LoseReply
	lost      atomic.Int64

	mu        sync.Mutex
	conns     map[net.Conn]struct{}
	holdUntil time.Time
	closed    bool
	wg        sync.WaitGroup
}

// StartProxy listens on a free loopback port and sends each connection to
// the first of targets (host:port) that accepts it.
func StartProxy(tb testing.TB, targets ...string) *Proxy {
	tb.Helper()
	return listenProxy(tb, func() []string { return targets }, false)
}

// NewBalancer listens on a free loopback port and spreads connections
// round robin over targets() (read for each connection, so a test can
// scale the backends).
func NewBalancer(tb testing.TB, targets func() []string) *Proxy {
	tb.Helper()
	return listenProxy(tb, targets, true)
}

func listenProxy(tb testing.TB, targets func() []string, roundRobin bool) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("proxy listen: %v", err)
	}
	p := &Proxy{ln: ln, targets: targets, roundRobin: roundRobin, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.Close)
	return p
}

// URL is the proxy's http:// base URL.
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		hold := time.Now().Before(p.holdUntil) || p.closed
		p.mu.Unlock()
		if hold {
			reset(c)
			continue
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *Proxy) dial() (net.Conn, error) {
	list := p.targets()
	start := 0
	if p.roundRobin && len(list) > 0 {
		start = int(p.next.Add(1) % uint64(len(list)))
	}
	last := errors.New("proxy: no target")
	for i := range list {
		up, err := net.DialTimeout("tcp", list[(start+i)%len(list)], 2*time.Second)
		if err == nil {
			return up, nil
		}
		last = err
	}
	return nil, last
}

func (p *Proxy) serve(c net.Conn) {
	defer p.wg.Done()
	up, err := p.dial()
	if err != nil {
		reset(c)
		return
	}
	if !p.track(c, up) {
		reset(c)
		reset(up)
		return
	}
	done := make(chan struct{}, 2)
	var mute atomic.Bool // the replies on this connection are lost
	go func() {
		p.forward(up, c, &mute)
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(muted{c, &mute}, up)
		done <- struct{}{}
	}()
	<-done
	// One side ended: end both, as a TCP balancer does when a backend
	// goes away.
	_ = c.Close()
	_ = up.Close()
	<-done
	p.untrack(c, up)
}

// forward copies a client's requests upstream. When LoseReply is armed
// and a request contains its needle, the request goes through, the replies
// from then on are dropped and the connection breaks a moment later: the
// server did the work, the client never hears of it.
func (p *Proxy) forward(up, c net.Conn, mute *atomic.Bool) {
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			hit := false
			if needle := p.loseReply.Load(); needle != nil && bytes.Contains(bytes.ToLower(buf[:n]), *needle) {
				hit = p.loseReply.CompareAndSwap(needle, nil)
			}
			if hit {
				mute.Store(true)
			}
			if _, werr := up.Write(buf[:n]); werr != nil {
				return
			}
			if hit {
				p.lost.Add(1)
				time.Sleep(200 * time.Millisecond) // the server answers into the void
				reset(c)
				reset(up)
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// LoseReply arms the proxy once: the next request that contains needle
// (case-insensitive, e.g. "xadd" for a Redis proxy) reaches the server,
// but its reply never comes back and the connection is reset. That is a
// server that did the work and crashed, or a network that broke, before
// answering. Lost counts how often it happened.
func (p *Proxy) LoseReply(needle string) {
	b := bytes.ToLower([]byte(needle))
	p.loseReply.Store(&b)
}

// Lost returns how many replies LoseReply made disappear.
func (p *Proxy) Lost() int { return int(p.lost.Load()) }

// Addr returns the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// muted drops what is written to it once its flag is set.
type muted struct {
	net.Conn
	mute *atomic.Bool
}

func (m muted) Write(b []byte) (int, error) {
	if m.mute.Load() {
		return len(b), nil
	}
	return m.Conn.Write(b)
}

func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *Proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
	}
}

// Cut resets every open connection and refuses new ones for hold. It
// returns how many connections (client and upstream sides) it reset.
func (p *Proxy) Cut(hold time.Duration) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holdUntil = time.Now().Add(hold)
	n := len(p.conns)
	for c := range p.conns {
		reset(c)
	}
	return n
}

// Control serves POST /cut?hold=2500ms (for scripts in other processes)
// and returns its URL.
func (p *Proxy) Control(tb testing.TB) string {
	tb.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /cut", func(w http.ResponseWriter, r *http.Request) {
		hold, err := time.ParseDuration(r.URL.Query().Get("hold"))
		if err != nil || hold < 0 || hold > time.Minute {
			http.Error(w, "hold must be a duration up to 1m, like 2500ms", http.StatusBadRequest)
			return
		}
		n := p.Cut(hold)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"dropped":%d}`, n)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("control listen: %v", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			tb.Errorf("proxy control server: %v", err)
		}
	}()
	tb.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String() + "/cut"
}

// Close stops the proxy and resets its connections.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	for c := range p.conns {
		reset(c)
	}
	p.mu.Unlock()
	_ = p.ln.Close()
	p.wg.Wait()
}

// reset closes c with an RST instead of a FIN.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
