package connector

import (
	"net/http"
	"strings"

	"github.com/coder/websocket"

	"github.com/roomstream/roomstream/connector/protocol"
)

// serveEngine is the Engine.IO endpoint: WebSocket sessions, HTTP
// long-polling sessions (polling.go) and their upgrades. A request of a
// polling session held by another connector is forwarded to it
// (forward.go).
func (s *Server) serveEngine(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	transport, sid := q.Get("transport"), q.Get("sid")
	if transport == "polling" || sid != "" || r.Method == http.MethodOptions {
		s.servePolling(w, r, transport, sid)
		return
	}
	if r.Method != http.MethodGet {
		writeJSONError(w, http.StatusBadRequest, protocol.ErrCodeBadHandshakeMethod, protocol.ErrorMessages[protocol.ErrCodeBadHandshakeMethod])
		return
	}
	if q.Get("EIO") != "4" {
		writeJSONError(w, http.StatusBadRequest, protocol.ErrCodeUnsupportedVersion, protocol.ErrorMessages[protocol.ErrCodeUnsupportedVersion])
		return
	}
	if transport != "websocket" {
		writeJSONError(w, http.StatusBadRequest, protocol.ErrCodeUnknownTransport, protocol.ErrorMessages[protocol.ErrCodeUnknownTransport])
		return
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		writeJSONError(w, http.StatusBadRequest, protocol.ErrCodeBadRequest, protocol.ErrorMessages[protocol.ErrCodeBadRequest])
		return
	}
	if s.draining.Load() || !s.ready.Load() {
		w.Header().Set("Retry-After", "1")
		writeJSONError(w, http.StatusServiceUnavailable, protocol.ErrCodeBadRequest, "Server unavailable, retry")
		return
	}
	addr := s.clientAddr(r)
	if !s.admitRequest(w, addr) {
		return
	}
	sb := &smallBuffers{ResponseWriter: w}
	conn, err := websocket.Accept(sb, r, s.acceptOptions())
	if err != nil {
		s.release()
		s.log.Debug("websocket accept", "err", err, "remote", r.RemoteAddr)
		return
	}
	conn.SetReadLimit(s.cfg.MaxPayload)
	s.conns.Add(1)
	// The socket gets its own goroutine and the handler returns: net/http's
	// connection goroutine, its buffers and the request are freed, which
	// idle connections would otherwise keep.
	go func() {
		defer s.conns.Done()
		defer s.release()
		so := newSocket(s, conn)
		so.ip = addr
		so.wire = sb.wire
		s.m.connections.Inc()
		defer s.m.connections.Dec()
		so.run()
	}()
}

var limitMessages = map[limitCode]string{
	limitConns:       "Server full, retry later",
	limitConnectRate: "Too many connection attempts from this address, slow down",
}

// acceptOptions are the WebSocket accept options: no compression, and
// the allowed origins.
func (s *Server) acceptOptions() *websocket.AcceptOptions {
	opts := &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled}
	if s.anyOrigin() {
		opts.InsecureSkipVerify = true // tokens, not cookies, authenticate: no CSRF to fear
	} else {
		opts.OriginPatterns = s.cfg.AllowedOrigins
	}
	return opts
}
