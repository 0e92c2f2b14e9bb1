package connector

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/roomstream/roomstream/connector/protocol"
)

// serveEngine is the Engine.IO endpoint. Only the WebSocket transport is
// served; every other request gets the Engine.IO error the reference
// server would give.
func (s *Server) serveEngine(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if r.Method != http.MethodGet {
		writeJSONError(w, http.StatusBadRequest, protocol.ErrCodeBadHandshakeMethod, protocol.ErrorMessages[protocol.ErrCodeBadHandshakeMethod])
		return
	}
	if q.Get("EIO") != "4" {
		writeJSONError(w, http.StatusBadRequest, protocol.ErrCodeUnsupportedVersion, protocol.ErrorMessages[protocol.ErrCodeUnsupportedVersion])
		return
	}
	if q.Get("transport") != "websocket" {
		// HTTP long-polling is not served: clients configured with
		// transports: ['websocket', 'polling'] open the WebSocket first.
		writeJSONError(w, http.StatusBadRequest, protocol.ErrCodeUnknownTransport, protocol.ErrorMessages[protocol.ErrCodeUnknownTransport])
		return
	}
	if q.Get("sid") != "" {
		// An upgrade from a polling session we never created.
		writeJSONError(w, http.StatusBadRequest, protocol.ErrCodeUnknownSID, protocol.ErrorMessages[protocol.ErrCodeUnknownSID])
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
	opts := &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled}
	if len(s.cfg.AllowedOrigins) == 0 || (len(s.cfg.AllowedOrigins) == 1 && s.cfg.AllowedOrigins[0] == "*") {
		opts.InsecureSkipVerify = true // tokens, not cookies, authenticate: no CSRF to fear
	} else {
		opts.OriginPatterns = s.cfg.AllowedOrigins
	}
	conn, err := websocket.Accept(w, r, opts)
	if err != nil {
		s.log.Debug("websocket accept", "err", err, "remote", r.RemoteAddr)
		return
	}
	conn.SetReadLimit(s.cfg.MaxPayload)
	s.conns.Add(1)
	defer s.conns.Done()
	so := newSocket(s, conn)
	s.m.connections.Inc()
	defer s.m.connections.Dec()
	so.run()
}

// closeCause says why a connection ended, which decides what happens to
// the socket's rooms.
type closeCause int

const (
	causeTransport closeCause = iota // dropped: keep for recovery
	causeClient                      // the client said goodbye: leave now
	causeServer                      // we disconnected it (41): leave now
	causeDrain                       // connector stopping: recover elsewhere
	causeParse                       // protocol error: keep for recovery
	causeSlow                        // send queue overflow: keep for recovery
	causePing                        // ping timeout: keep for recovery
)

var causeNames = map[closeCause]string{
	causeTransport: "transport", causeClient: "client", causeServer: "server",
	causeDrain: "drain", causeParse: "parse_error", causeSlow: "slow", causePing: "ping_timeout",
}

// writeLoop sends queued frames and pings; it owns every write to the
// connection.
func (so *socket) writeLoop() {
	defer close(so.writerDone)
	s := so.srv
	ping := time.NewTimer(s.cfg.PingInterval)
	defer ping.Stop()
	awaitingPong := false
	var pingSent time.Time
	write := func(b []byte) bool {
		ctx, cancel := context.WithTimeout(so.ctx, 10*time.Second)
		defer cancel()
		if err := so.conn.Write(ctx, websocket.MessageText, b); err != nil {
			so.fail(causeTransport, websocket.StatusGoingAway, "")
			_ = so.conn.CloseNow()
			so.cancel()
			return false
		}
		return true
	}
	for {
		select {
		case <-so.ctx.Done():
			return
		case b := <-so.out:
			if !write(b) {
				return
			}
		case <-so.closeReq:
			// Flush what is queued, then close with the requested status.
			for {
				select {
				case b := <-so.out:
					if !write(b) {
						return
					}
					continue
				default:
				}
				break
			}
			code, reason := so.closeStatus()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = so.closeConn(ctx, code, reason)
			cancel()
			so.cancel()
			return
		case <-ping.C:
			if awaitingPong {
				if so.pongAt.Load() < pingSent.UnixNano() {
					so.fail(causePing, websocket.StatusGoingAway, "ping timeout")
					ctx, cancel := context.WithTimeout(context.Background(), time.Second)
					_ = so.closeConn(ctx, websocket.StatusGoingAway, "ping timeout")
					cancel()
					so.cancel()
					return
				}
				awaitingPong = false
				ping.Reset(s.cfg.PingInterval - s.cfg.PingTimeout)
				continue
			}
			pingSent = time.Now()
			if !write([]byte{byte(protocol.EnginePing)}) {
				return
			}
			awaitingPong = true
			if s.cfg.PingTimeout < s.cfg.PingInterval {
				ping.Reset(s.cfg.PingTimeout)
			} else {
				ping.Reset(s.cfg.PingInterval)
			}
		}
	}
}

// closeConn closes the WebSocket with a status, without waiting long for
// the client's close frame.
func (so *socket) closeConn(ctx context.Context, code websocket.StatusCode, reason string) error {
	done := make(chan error, 1)
	go func() { done <- so.conn.Close(code, reason) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return so.conn.CloseNow()
	}
}

// readLoop reads frames until the connection ends.
func (so *socket) readLoop() {
	for {
		typ, data, err := so.conn.Read(so.ctx)
		if err != nil {
			switch status := websocket.CloseStatus(err); {
			case status == websocket.StatusNormalClosure || status == websocket.StatusGoingAway:
				so.fail(causeClient, websocket.StatusNormalClosure, "")
			case status == websocket.StatusMessageTooBig || strings.Contains(err.Error(), "read limited"):
				so.fail(causeParse, websocket.StatusMessageTooBig, "message too big")
			case errors.Is(err, context.Canceled):
				// closed by us
			default:
				so.fail(causeTransport, websocket.StatusGoingAway, "")
			}
			return
		}
		if typ == websocket.MessageBinary {
			if so.skipBinary > 0 {
				so.skipBinary--
				continue
			}
			so.fail(causeParse, websocket.StatusProtocolError, "unexpected binary frame")
			return
		}
		et, payload, err := protocol.DecodeEngine(data)
		if err != nil {
			so.fail(causeParse, websocket.StatusProtocolError, "bad engine.io packet")
			return
		}
		switch et {
		case protocol.EnginePong:
			so.pongAt.Store(time.Now().UnixNano())
		case protocol.EngineMessage:
			if !so.handlePacket(payload) {
				return
			}
		case protocol.EngineClose:
			so.fail(causeClient, websocket.StatusNormalClosure, "")
			return
		case protocol.EngineNoop:
		default:
			// open, upgrade, and ping (a v4 client never pings)
			so.fail(causeParse, websocket.StatusProtocolError, "unexpected engine.io packet")
			return
		}
	}
}
