package netguard

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pires/go-proxyproto"
)

// listener counts each accepted connection for its address.
type listener struct {
	net.Listener
	g *Guard
}

func (l *listener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.g.wrap(nc), nil
}

// wrap counts a new connection for its peer's address, or marks it
// refused. A trusted proxy's connection is counted later, for the client
// it names: its PROXY header is read on the connection's goroutine (here
// it would hold up the accept loop), and an HTTP proxy names a client per
// request. Anyone else's PROXY header is not looked for, so it reaches
// net/http as a malformed request line and is refused (400).
func (g *Guard) wrap(nc net.Conn) *conn {
	c := &conn{Conn: nc, raw: nc, g: g}
	peer := addrOf(nc.RemoteAddr())
	if g.cfg.Trust.Trusted(peer) {
		c.proxy = proxyproto.NewConn(nc, proxyproto.WithPolicy(proxyproto.USE),
			proxyproto.SetReadHeaderTimeout(g.cfg.ProxyHeaderTimeout))
		c.Conn = c.proxy
		return c
	}
	c.admit(Key(peer))
	return c
}

// conn is an accepted connection and what it holds of its address's
// connection limit.
type conn struct {
	net.Conn                  // raw, or proxy
	raw      net.Conn         // the accepted connection
	proxy    *proxyproto.Conn // set when the peer is a trusted proxy
	g        *Guard
	hijacked atomic.Bool // set by the server's ConnState hook

	mu      sync.Mutex
	keys    []string // counted until Close
	closed  bool
	cutoff  time.Time // refused: no deadline past it
	started bool      // a request came
	proxied bool      // a trusted proxy's PROXY header named the client
}

// admit counts the connection for key, or refuses it: it may then send
// one request, which is answered 429, within refusedGrace.
func (c *conn) admit(key string) {
	if !c.g.counting() {
		return
	}
	if !c.g.take(key) {
		c.mu.Lock()
		c.cutoff = time.Now().Add(refusedGrace)
		c.mu.Unlock()
		_ = c.Conn.SetDeadline(c.cutoff)
		return
	}
	c.hold(key)
}

// hold keeps key counted until the connection closes.
func (c *conn) hold(key string) {
	c.mu.Lock()
	if !c.closed {
		c.keys = append(c.keys, key)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.g.release(key)
}

// firstRequest admits a trusted proxy's connection for the client its
// PROXY header names, on the connection's first request (the header has
// been read by then), and tells whether the connection has such a client.
func (c *conn) firstRequest() (proxied bool) {
	c.mu.Lock()
	first := !c.started
	c.started = true
	c.mu.Unlock()
	if first && c.proxy != nil {
		if h := c.proxy.ProxyHeader(); h != nil && h.SourceAddr != nil && !h.Command.IsLocal() {
			c.mu.Lock()
			c.proxied = true
			c.mu.Unlock()
			c.admit(Key(addrOf(h.SourceAddr)))
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.proxied
}

func (c *conn) isRefused() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.cutoff.IsZero()
}

// Close closes the connection and gives back what it counted.
func (c *conn) Close() error {
	c.mu.Lock()
	keys := c.keys
	c.keys, c.closed = nil, true
	c.mu.Unlock()
	for _, k := range keys {
		c.g.release(k)
	}
	return c.Conn.Close()
}

// clamp keeps a refused connection's deadlines within its grace.
func (c *conn) clamp(t time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.cutoff.IsZero() && (t.IsZero() || t.After(c.cutoff)) {
		return c.cutoff
	}
	return t
}

func (c *conn) SetDeadline(t time.Time) error      { return c.Conn.SetDeadline(c.clamp(t)) }
func (c *conn) SetReadDeadline(t time.Time) error  { return c.Conn.SetReadDeadline(c.clamp(t)) }
func (c *conn) SetWriteDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(c.clamp(t)) }

// SyscallConn is the accepted socket's: the connector writes WebSocket
// frames to it without blocking (a PROXY header only concerns reads).
func (c *conn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.raw.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.New("netguard: not a socket")
}

// CloseWrite lets net/http half-close a connection after its last
// response (a refusal among them), so the client reads it before the
// connection is reset.
func (c *conn) CloseWrite() error {
	if cw, ok := c.raw.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("netguard: cannot half-close")
}
