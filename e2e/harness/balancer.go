package harness

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// HTTPBalancer is an HTTP load balancer for tests with no sticky
// sessions at all: every request goes to the next of its targets in
// turn, so consecutive requests of one client (even on one keep-alive
// connection) reach different connectors. A target that refuses
// connections (a connector that died) is skipped. WebSocket upgrades are
// relayed like any request, or refused (RefuseWebSocket: a proxy that
// does not pass WebSockets, as some corporate proxies).
type HTTPBalancer struct {
	srv     *httptest.Server
	targets []string
	next    atomic.Uint64
	refuse  bool

	mu      sync.Mutex
	served  map[string]int // requests per target
	refused int            // WebSocket upgrades refused
}

// StartHTTPBalancer listens on a free loopback port in front of targets
// (host:port).
func StartHTTPBalancer(tb testing.TB, refuseWebSocket bool, targets ...string) *HTTPBalancer {
	tb.Helper()
	b := &HTTPBalancer{targets: targets, refuse: refuseWebSocket, served: map[string]int{}}
	dialer := &net.Dialer{Timeout: 2 * time.Second}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			t := b.targets[b.next.Add(1)%uint64(len(b.targets))]
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", t
			pr.Out.Host = pr.In.Host
			b.mu.Lock()
			b.served[t]++
			b.mu.Unlock()
		},
		Transport: &http.Transport{
			// A target that refuses the connection: the next one.
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := dialer.DialContext(ctx, network, addr)
				for i := 0; err != nil && i < len(b.targets); i++ {
					if alt := b.targets[i]; alt != addr {
						c, err = dialer.DialContext(ctx, network, alt)
					}
				}
				return c, err
			},
			MaxIdleConnsPerHost: 64,
		},
		// A client that gave up on its request (a poll it dropped) is no
		// news: answer quietly.
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) },
	}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b.refuse && strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			b.mu.Lock()
			b.refused++
			b.mu.Unlock()
			http.Error(w, "WebSocket not allowed by this proxy", http.StatusForbidden)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	tb.Cleanup(func() { b.srv.CloseClientConnections(); b.srv.Close() })
	return b
}

// URL is the balancer's base URL.
func (b *HTTPBalancer) URL() string { return b.srv.URL }

// Served returns how many requests went to each target.
func (b *HTTPBalancer) Served() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]int, len(b.served))
	for k, v := range b.served {
		out[k] = v
	}
	return out
}

// Refused returns how many WebSocket upgrades were refused.
func (b *HTTPBalancer) Refused() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.refused
}
