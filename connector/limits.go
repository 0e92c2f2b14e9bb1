package connector

import (
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/roomstream/roomstream/connector/protocol"
)

// limits counts this connector's connections in total and per source
// address, and rate-limits handshakes per source address.
type limits struct {
	mu    sync.Mutex
	total int
	addrs map[string]*addrLimit
	swept time.Time
}

type addrLimit struct {
	conns   int
	connect *rate.Limiter
}

// limitCode names the limit that refused a connection (the metric label).
type limitCode string

const (
	limitConns       limitCode = "conns"
	limitConnsPerIP  limitCode = "conns_per_ip"
	limitConnectRate limitCode = "connect_rate"
	limitConnsUser   limitCode = "conns_per_user"
	limitRoomsUser   limitCode = "rooms_per_user"
)

// admit takes a connection slot for ip, or says which limit refuses it.
func (s *Server) admit(ip string) (limitCode, bool) {
	l := &s.limits
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.addrs == nil {
		l.addrs = map[string]*addrLimit{}
	}
	now := time.Now()
	if now.Sub(l.swept) > time.Minute {
		// Forget addresses with no connection whose handshake budget is
		// full again: the map holds only addresses that matter.
		for a, al := range l.addrs {
			if al.conns == 0 && al.connect.TokensAt(now) >= float64(al.connect.Burst()) {
				delete(l.addrs, a)
			}
		}
		l.swept = now
	}
	if s.cfg.MaxConns > 0 && l.total >= s.cfg.MaxConns {
		return limitConns, false
	}
	al := l.addrs[ip]
	if al == nil {
		r, burst := rate.Limit(s.cfg.ConnectRate), max(1, int(2*s.cfg.ConnectRate))
		if s.cfg.ConnectRate <= 0 {
			r = rate.Inf
		}
		al = &addrLimit{connect: rate.NewLimiter(r, burst)}
		l.addrs[ip] = al
	}
	if s.cfg.MaxConnsPerIP > 0 && al.conns >= s.cfg.MaxConnsPerIP {
		return limitConnsPerIP, false
	}
	if !al.connect.AllowN(now, 1) {
		return limitConnectRate, false
	}
	al.conns++
	l.total++
	return "", true
}

// release gives back the slot admit took.
func (s *Server) release(ip string) {
	l := &s.limits
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if al := l.addrs[ip]; al != nil {
		al.conns--
	}
}

// clientIP is the source address of a request (the peer's; a proxy in
// front counts as one address, so size MAX_CONNS_PER_IP for it or put the
// limit on the proxy).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// admitRequest takes a connection slot for a new Engine.IO session
// (WebSocket or polling handshake), or answers the refusal: 503 when the
// connector is full, 429 for the per-address limits.
func (s *Server) admitRequest(w http.ResponseWriter, ip string) bool {
	code, ok := s.admit(ip)
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
