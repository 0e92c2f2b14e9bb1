package connector

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/roomstream/roomstream/connector/protocol"
)

// No sticky sessions: the Engine.IO id of a polling session is
// "<connector id>.<random>", and a request of a session that reaches
// another connector is forwarded to the one holding it, at the address
// it advertises in Redis (connector:{id}:addr, refreshed with its
// heartbeat). A WebSocket upgrade forwarded this way stays relayed by the
// connector it reached for the socket's lifetime.

// forwardHeader marks a request forwarded by a connector: it is never
// forwarded again.
const forwardHeader = "X-Roomstream-Forwarded-By"

// peerCacheTTL is how long a connector's advertised address is reused
// before it is read again; peerMissTTL how long the absence of one is:
// the requests of a dead connector's sessions (until their clients
// notice) then cost no Redis read each.
const (
	peerCacheTTL = 2 * time.Second
	peerMissTTL  = 3 * time.Second
	// peerCacheMax bounds the cache: a session id can name any connector,
	// so the misses of made-up ones must not pile up.
	peerCacheMax = 1024
)

type peerAddr struct {
	addr  string // "" for a connector that advertises none
	until time.Time
}

// forwarder passes requests on to the connector that holds their session.
type forwarder struct {
	once  sync.Once
	proxy *httputil.ReverseProxy // forwardProxy (relay.go)
	mu    sync.Mutex
	peers map[string]peerAddr
}

// servePolling serves everything but WebSocket-only sessions: polling
// handshakes, polling requests with a sid, upgrades, CORS preflights.
func (s *Server) servePolling(w http.ResponseWriter, r *http.Request, transport, sid string) {
	if !s.originAllowed(r) {
		writeJSONError(w, http.StatusForbidden, protocol.ErrCodeForbidden, protocol.ErrorMessages[protocol.ErrCodeForbidden])
		return
	}
	if r.Method == http.MethodOptions {
		s.preflightHeaders(w, r)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if r.URL.Query().Get("EIO") != "4" {
		s.corsHeaders(w, r)
		writeJSONError(w, http.StatusBadRequest, protocol.ErrCodeUnsupportedVersion, protocol.ErrorMessages[protocol.ErrCodeUnsupportedVersion])
		return
	}
	if transport != "polling" && transport != "websocket" {
		s.corsHeaders(w, r)
		writeJSONError(w, http.StatusBadRequest, protocol.ErrCodeUnknownTransport, protocol.ErrorMessages[protocol.ErrCodeUnknownTransport])
		return
	}
	if sid == "" {
		s.corsHeaders(w, r)
		if s.draining.Load() || !s.ready.Load() {
			w.Header().Set("Retry-After", "1")
			writeJSONError(w, http.StatusServiceUnavailable, protocol.ErrCodeBadRequest, "Server unavailable, retry")
			return
		}
		s.pollHandshake(w, r)
		return
	}
	if r.Method == http.MethodGet && transport == "polling" {
		s.holdDeadlines(w) // here or on the connector it is passed on to
	}
	s.mu.RLock()
	so := s.polls[sid]
	s.mu.RUnlock()
	if so == nil {
		owner, _, ok := strings.Cut(sid, ".")
		if ok && owner != s.id && r.Header.Get(forwardHeader) == "" && validName(owner) {
			s.forward(w, r, owner)
			return
		}
		s.corsHeaders(w, r)
		writeJSONError(w, http.StatusBadRequest, protocol.ErrCodeUnknownSID, protocol.ErrorMessages[protocol.ErrCodeUnknownSID])
		return
	}
	s.corsHeaders(w, r)
	so.qmu.Lock()
	p := so.poll
	so.qmu.Unlock()
	if p == nil {
		// Upgraded: the polling transport is gone.
		writeJSONError(w, http.StatusBadRequest, protocol.ErrCodeBadRequest, protocol.ErrorMessages[protocol.ErrCodeBadRequest])
		return
	}
	if transport == "websocket" {
		if r.Method != http.MethodGet || !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			writeJSONError(w, http.StatusBadRequest, protocol.ErrCodeBadRequest, protocol.ErrorMessages[protocol.ErrCodeBadRequest])
			return
		}
		s.pollUpgrade(w, r, so, p)
		return
	}
	s.pollSession(w, r, so, p)
}

// forward passes the request on to connector owner. The request was
// admitted here, where the client reached; a POST's body is read here
// too, within this connector's read deadline, so that a client that
// stalls it holds nothing on the peer.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, owner string) {
	addr := s.peer(r.Context(), owner)
	if addr == "" {
		// The connector is gone (its client recovers its socket on a new
		// session) or never existed.
		s.m.forwarded.WithLabelValues("gone").Inc()
		s.corsHeaders(w, r)
		writeJSONError(w, http.StatusBadRequest, protocol.ErrCodeUnknownSID, protocol.ErrorMessages[protocol.ErrCodeUnknownSID])
		return
	}
	if r.Method == http.MethodPost {
		// One byte more than the peer accepts: it refuses the body as
		// too large itself, and ends the session as it would.
		body, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxPayload+1))
		if err != nil {
			s.m.forwarded.WithLabelValues("slow_body").Inc()
			s.corsHeaders(w, r)
			s.writeBodyError(w, err)
			return
		}
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	}
	s.fwd.once.Do(func() { s.fwd.proxy = s.forwardProxy() })
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	f := &forwardReq{peer: addr, answered: time.AfterFunc(s.answerTimeout(), func() { cancel(errPeerSilent) })}
	defer f.answered.Stop()
	s.fwd.proxy.ServeHTTP(&relayWriter{ResponseWriter: w, s: s}, r.WithContext(context.WithValue(ctx, ctxKeyForward{}, f)))
}

// peer returns the address connector id advertised ("" when none).
func (s *Server) peer(ctx context.Context, id string) string {
	now := s.now()
	s.fwd.mu.Lock()
	if p, ok := s.fwd.peers[id]; ok && now.Before(p.until) {
		s.fwd.mu.Unlock()
		return p.addr
	}
	s.fwd.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	addr, err := s.c.ConnectorAddr(ctx, id)
	if err != nil {
		return "" // not cached: Redis may answer the next request
	}
	ttl := peerCacheTTL
	if addr == "" {
		ttl = peerMissTTL
	}
	s.fwd.mu.Lock()
	defer s.fwd.mu.Unlock()
	if s.fwd.peers == nil {
		s.fwd.peers = map[string]peerAddr{}
	}
	if len(s.fwd.peers) >= peerCacheMax {
		for k, p := range s.fwd.peers {
			if !now.Before(p.until) {
				delete(s.fwd.peers, k)
			}
		}
		if len(s.fwd.peers) >= peerCacheMax {
			return addr
		}
	}
	s.fwd.peers[id] = peerAddr{addr: addr, until: now.Add(ttl)}
	return addr
}

// advertise records where other connectors reach this one.
func (s *Server) advertise(ctx context.Context) {
	if s.cfg.AdvertiseAddr == "" {
		return
	}
	if err := s.c.AdvertiseConnector(ctx, s.id, s.cfg.AdvertiseAddr, s.cfg.HeartbeatTTL); err != nil {
		s.log.Warn("advertise address", "err", err)
	}
}

// anyOrigin tells whether every browser origin is allowed.
func (s *Server) anyOrigin() bool {
	o := s.cfg.AllowedOrigins
	return len(o) == 0 || (len(o) == 1 && o[0] == "*")
}

// originAllowed applies ROOMSTREAM_ALLOWED_ORIGINS to a polling request
// as the WebSocket accept does: no Origin (not a browser), the page's own
// host, or a host matching one of the patterns.
func (s *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || s.anyOrigin() {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(r.Host, u.Host) {
		return true
	}
	for _, pattern := range s.cfg.AllowedOrigins {
		target := u.Host
		if strings.Contains(pattern, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, err := path.Match(strings.ToLower(pattern), strings.ToLower(target)); err == nil && ok {
			return true
		}
	}
	return false
}

// corsHeaders lets the browser page that sent the request (an allowed
// origin) read the answer.
func (s *Server) corsHeaders(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	h.Add("Vary", "Origin")
}

// preflightHeaders answers a CORS preflight (OPTIONS): corsHeaders, and
// the methods and headers the page may send.
func (s *Server) preflightHeaders(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Origin") == "" {
		return
	}
	s.corsHeaders(w, r)
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	if hdrs := r.Header.Get("Access-Control-Request-Headers"); hdrs != "" {
		h.Set("Access-Control-Allow-Headers", hdrs)
	}
	h.Set("Access-Control-Max-Age", "86400")
}
