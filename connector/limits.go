package connector

import (
	"net/http"
	"sync"

	"github.com/roomstream/roomstream/connector/netguard"
	"github.com/roomstream/roomstream/connector/protocol"
)

// limits counts this connector's Engine.IO sessions, and rate-limits
// handshakes per client address. Open connections per address are
// counted by the guard (netguard), in front of every handler.
type limits struct {
	mu      sync.Mutex
	total   int
	connect *netguard.Limiter // handshakes per address key
}

// limitCode names the limit that refused a connection (the metric label).
type limitCode string

const (
	limitConns       limitCode = "conns"
	limitConnectRate limitCode = "connect_rate"
	limitConnsUser   limitCode = "conns_per_user"
	limitRoomsUser   limitCode = "rooms_per_user"
)

// admit takes a session slot for a handshake from the client address key
// addr, or says which limit refuses it.
func (s *Server) admit(addr string) (limitCode, bool) {
	l := &s.limits
	l.mu.Lock()
	defer l.mu.Unlock()
	if s.cfg.MaxConns > 0 && l.total >= s.cfg.MaxConns {
		return limitConns, false
	}
	if !l.connect.Allow(addr) {
		return limitConnectRate, false
	}
	l.total++
	return "", true
}

// release gives back the slot admit took.
func (s *Server) release() {
	l := &s.limits
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
}

// clientAddr is the key of the client's address that the per-address
// limits count by: its peer's, or the one a trusted proxy names (an IPv6
// address's /64), as the guard and the server API key it.
func (s *Server) clientAddr(r *http.Request) string { return s.guard.ClientKey(r) }

// admitRequest takes a session slot for a new Engine.IO session
// (WebSocket or polling handshake), or answers the refusal: 503 when the
// connector is full, 429 for the handshake rate of the address.
func (s *Server) admitRequest(w http.ResponseWriter, addr string) bool {
	code, ok := s.admit(addr)
	if ok {
		return true
	}
	s.m.limited.WithLabelValues(string(code)).Inc()
	w.Header().Set("Retry-After", "1")
	status := http.StatusServiceUnavailable
	if code != limitConns {
		status = http.StatusTooManyRequests
	}
	writeJSONError(w, status, protocol.ErrCodeBadRequest, limitMessages[code])
	return false
}
