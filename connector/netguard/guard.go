package netguard

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/roomstream/roomstream/connector/protocol"
)

// Config configures a Guard.
type Config struct {
	// Trust names the proxies whose word on a client's address is taken.
	Trust Trust
	// MaxConnsPerAddr bounds the open connections of one address key
	// (Key); 0 means no limit.
	MaxConnsPerAddr int
	// ProxyHeaderTimeout bounds the wait for the PROXY header of a
	// connection from a trusted proxy (0: DefaultProxyHeaderTimeout).
	ProxyHeaderTimeout time.Duration
}

// DefaultProxyHeaderTimeout is how long a trusted proxy's connection may
// take to send its PROXY header when Config sets no bound: as long as a
// client has for its request headers.
const DefaultProxyHeaderTimeout = 10 * time.Second

// refusedGrace is how long a connection refused for its address has to
// send its request and read the 429: long enough for a client that is
// sending anyway, short enough that refused connections hold no
// descriptors worth counting.
const refusedGrace = 2 * time.Second

// Guard counts the open connections of each client address and refuses
// those past the limit (429). It stands between a listener and an
// http.Server: Listen wraps the listener, Configure the server.
//
// What counts as one connection:
//   - a client's own TCP connection, from accept to close, whatever it
//     carries (a WebSocket, a held poll, a POST, nothing yet);
//   - a connection from a trusted proxy that speaks the PROXY protocol,
//     for the client the header names, from its first request to close;
//   - a request from a trusted HTTP proxy (X-Forwarded-For), for the
//     client it names, while the request is served (a WebSocket for its
//     lifetime): the proxy's own connections carry many clients.
type Guard struct {
	cfg Config

	mu      sync.Mutex
	open    map[string]int // open connections by address key
	refused atomic.Int64
}

// New returns a Guard.
func New(cfg Config) *Guard {
	if cfg.ProxyHeaderTimeout <= 0 {
		cfg.ProxyHeaderTimeout = DefaultProxyHeaderTimeout
	}
	return &Guard{cfg: cfg, open: map[string]int{}}
}

// Trust returns the trusted proxies.
func (g *Guard) Trust() Trust { return g.cfg.Trust }

// ClientKey is the address key of the client that sent r (Trust.ClientKey).
func (g *Guard) ClientKey(r *http.Request) string { return g.cfg.Trust.ClientKey(r) }

// Open returns the connections counted for an address key.
func (g *Guard) Open(key string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open[key]
}

// Refused returns how many connections and requests were refused for
// their address's limit.
func (g *Guard) Refused() int64 { return g.refused.Load() }

// counting tells whether connections are counted at all.
func (g *Guard) counting() bool { return g.cfg.MaxConnsPerAddr > 0 }

// take counts one more connection for key, or refuses it.
func (g *Guard) take(key string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open[key] >= g.cfg.MaxConnsPerAddr {
		g.refused.Add(1)
		return false
	}
	g.open[key]++
	return true
}

// release gives back what take counted.
func (g *Guard) release(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open[key] <= 1 {
		delete(g.open, key)
		return
	}
	g.open[key]--
}

// Listen wraps ln: every connection it accepts is counted for its
// address (or, from a trusted proxy, may open with a PROXY header).
func (g *Guard) Listen(ln net.Listener) net.Listener { return &listener{Listener: ln, g: g} }

// Configure has hs refuse the connections and requests past the limit
// and see which connections are hijacked; hs must serve a listener from
// Listen.
func (g *Guard) Configure(hs *http.Server) {
	next := hs.Handler
	if next == nil {
		next = http.DefaultServeMux
	}
	hs.Handler = g.handler(next)
	prevCtx := hs.ConnContext
	hs.ConnContext = func(ctx context.Context, nc net.Conn) context.Context {
		if prevCtx != nil {
			ctx = prevCtx(ctx, nc)
		}
		if c, ok := nc.(*conn); ok {
			ctx = context.WithValue(ctx, connKey{}, c)
		}
		return ctx
	}
	prevState := hs.ConnState
	hs.ConnState = func(nc net.Conn, st http.ConnState) {
		if c, ok := nc.(*conn); ok && st == http.StateHijacked {
			c.hijacked.Store(true)
		}
		if prevState != nil {
			prevState(nc, st)
		}
	}
}

type connKey struct{}

// handler answers the requests of refused connections with 429, and
// counts the requests trusted HTTP proxies pass on for their clients.
func (g *Guard) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Context().Value(connKey{}).(*conn)
		if c == nil {
			next.ServeHTTP(w, r)
			return
		}
		proxied := c.firstRequest()
		if c.isRefused() {
			w.Header().Set("Connection", "close")
			refuse(w)
			return
		}
		if c.proxy == nil || proxied || !g.counting() {
			next.ServeHTTP(w, r)
			return
		}
		// A trusted HTTP proxy: this request is one connection of the
		// client it names.
		key := g.ClientKey(r)
		if !g.take(key) {
			refuse(w)
			return
		}
		defer func() {
			if c.hijacked.Load() {
				c.hold(key) // a WebSocket: counted until it closes
			} else {
				g.release(key)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// refuse answers 429 in the Engine.IO error shape, which the connector's
// other refusals use (most of what reaches it is Engine.IO).
func refuse(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Retry-After", "1")
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusTooManyRequests)
	_ = json.NewEncoder(w).Encode(struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{protocol.ErrCodeBadRequest, "Too many connections from this address"})
}
