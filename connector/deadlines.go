package connector

import (
	"errors"
	"net/http"
	"os"
	"time"

	"github.com/roomstream/roomstream/connector/netguard"
	"github.com/roomstream/roomstream/connector/protocol"
)

// Deadlines of HTTP requests. Every request has ROOMSTREAM_READ_TIMEOUT
// to arrive, headers and body, and its response ROOMSTREAM_WRITE_TIMEOUT
// to leave (net/http's ReadTimeout and WriteTimeout), so that a client
// that stalls holds its connection for a bounded time. The exceptions are
// set per request: a held poll gets pingInterval more (holdDeadlines), and
// a WebSocket, once hijacked, has no HTTP deadline left (net/http clears
// them): its writes have their own, pings tell when its client is gone,
// and a relayed one is copied with deadlines of its own (relay.go).

// headerTimeout bounds the request headers (READ_TIMEOUT when shorter).
const headerTimeout = 10 * time.Second

// NewGuard returns the guard of a connector's listener: its trusted
// proxies and MAX_CONNS_PER_IP (cfg has been validated).
func NewGuard(cfg Config) *netguard.Guard {
	trust, _ := netguard.ParseTrust(cfg.TrustedProxies)
	return netguard.New(netguard.Config{Trust: trust, MaxConnsPerAddr: cfg.MaxConnsPerIP,
		ProxyHeaderTimeout: min(headerTimeout, cfg.ReadTimeout)})
}

// HTTPServer returns the http.Server that serves h to clients with the
// connector's deadlines, guarded by g (nil: no connection limit); it must
// serve a listener wrapped by g.Listen.
func HTTPServer(cfg Config, g *netguard.Guard, h http.Handler) *http.Server {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: min(headerTimeout, cfg.ReadTimeout),
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
	}
	if g != nil {
		g.Configure(hs)
	}
	return hs
}

// holdDeadlines gives a request that is held until there is something to
// answer (a poll, or one passed on to the connector holding its session)
// pingInterval more to be answered in: net/http's read deadline would
// otherwise end it early (its context is cancelled when a read of the
// connection times out).
func (s *Server) holdDeadlines(w http.ResponseWriter) {
	d := time.Now().Add(s.cfg.PingInterval + s.writeTimeout())
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(d)
	_ = rc.SetWriteDeadline(d)
}

// writeBodyError answers a request whose body could not be read, in the
// Engine.IO error shape: 408 when it did not arrive within READ_TIMEOUT,
// 400 otherwise. The answer gets a write timeout of its own: the
// request's ends about when its read deadline did.
func (s *Server) writeBodyError(w http.ResponseWriter, err error) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.writeTimeout()))
	if errors.Is(err, os.ErrDeadlineExceeded) {
		writeJSONError(w, http.StatusRequestTimeout, protocol.ErrCodeBadRequest, "Request body not received in time")
		return
	}
	writeJSONError(w, http.StatusBadRequest, protocol.ErrCodeBadRequest, protocol.ErrorMessages[protocol.ErrCodeBadRequest])
}
