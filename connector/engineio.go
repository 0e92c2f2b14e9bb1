package connector

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

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
	ip := clientIP(r)
	if !s.admitRequest(w, ip) {
		return
	}
	sb := &smallBuffers{ResponseWriter: w}
	conn, err := websocket.Accept(sb, r, s.acceptOptions())
	if err != nil {
		s.release(ip)
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
		defer s.release(ip)
		so := newSocket(s, conn)
		so.ip = ip
		so.cork = sb.cork
		s.m.connections.Inc()
		defer s.m.connections.Dec()
		so.run()
	}()
}

var limitMessages = map[limitCode]string{
	limitConns:       "Server full, retry later",
	limitConnsPerIP:  "Too many connections from this address",
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
	causeKicked                      // an operator disconnected the user (HTTP API): leave now
)

var causeNames = map[closeCause]string{
	causeTransport: "transport", causeClient: "client", causeServer: "server",
	causeDrain: "drain", causeParse: "parse_error", causeSlow: "slow", causePing: "ping_timeout",
	causeKicked: "kicked",
}

// flush is the socket's writer: it runs while frames are queued, writes
// them in order and exits when the queue is empty, so that an idle socket
// holds no writer goroutine. Once the socket fails, it writes what is
// queued (nothing after a ping timeout: the client is gone) and closes the
// connection with the failure's status.
func (so *socket) flush() {
	broken := false
	for {
		so.qmu.Lock()
		batch := so.queue
		so.queue, so.qbytes = nil, 0
		if so.closeWanted && so.cause == causePing {
			batch = nil // the client is gone
			if so.cork != nil {
				so.cork.discard()
			}
		}
		pending := so.cork != nil && so.cork.pending()
		if len(batch) == 0 && !pending {
			if so.closeWanted {
				so.closed = true
				so.qmu.Unlock()
				if so.cause == causePing {
					// The client is gone: no close handshake to wait for.
					_ = so.conn.CloseNow()
				} else {
					code, reason := so.closeStatus()
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
					_ = so.closeConn(ctx, code, reason)
					cancel()
				}
				close(so.writerDone)
				return
			}
			so.writing = false
			so.qmu.Unlock()
			return
		}
		so.qmu.Unlock()
		if broken {
			if so.cork != nil {
				so.cork.discard()
			}
			continue
		}
		// Every write has a deadline: a client that stops reading is
		// disconnected once one write has waited WriteTimeout.
		var err error
		if so.cork != nil {
			// What an earlier non-blocking write left, then the batch,
			// in one system call.
			err = so.cork.writeFrames(batch, so.srv.writeTimeout())
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), so.srv.writeTimeout())
			for _, b := range batch {
				if err = so.conn.Write(ctx, websocket.MessageText, b); err != nil {
					break
				}
			}
			cancel()
		}
		if err != nil {
			broken = true
			so.fail(causeTransport, websocket.StatusGoingAway, "")
			_ = so.conn.CloseNow()
		}
	}
}

// ping runs on the socket's ping timer: every PingInterval it queues an
// Engine.IO ping, and PingTimeout later it checks that a pong came back.
func (so *socket) ping() {
	s := so.srv
	so.qmu.Lock()
	if so.timersOff {
		so.qmu.Unlock()
		return
	}
	if so.awaitingPong {
		if so.pongAt.Load() < so.pingSent {
			so.qmu.Unlock()
			so.fail(causePing, websocket.StatusGoingAway, "ping timeout")
			return
		}
		so.awaitingPong = false
		so.pingTimer.Reset(s.cfg.PingInterval - s.cfg.PingTimeout)
		so.qmu.Unlock()
		return
	}
	so.pingSent = time.Now().UnixNano()
	so.awaitingPong = true
	if s.cfg.PingTimeout < s.cfg.PingInterval {
		so.pingTimer.Reset(s.cfg.PingTimeout)
	} else {
		so.pingTimer.Reset(s.cfg.PingInterval)
	}
	so.qmu.Unlock()
	so.enqueueRaw(pingFrame)
}

var pingFrame = []byte{byte(protocol.EnginePing)}

// writeTimeout is how long one write to a client may block.
func (s *Server) writeTimeout() time.Duration {
	if s.cfg.WriteTimeout > 0 {
		return s.cfg.WriteTimeout
	}
	return defaultWriteTimeout
}

const defaultWriteTimeout = 10 * time.Second

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

// handleOffStack handles a packet on a short-lived goroutine while the
// read loop waits. Handling runs deep code (JWT checks, JSON decoding,
// Redis calls) whose stack would otherwise stay with the read loop's
// goroutine for the connection's lifetime; the read loop itself only
// needs a small one, which is what an idle connection keeps.
//
// A panic while handling the packet closes this socket (and is logged
// with its stack); the process and the other sockets go on.
func (so *socket) handleOffStack(data []byte) bool {
	done := make(chan bool, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				so.srv.m.panics.Inc()
				so.srv.log.Error("panic while handling a packet: socket closed", "socket", so.sid,
					"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				so.fail(causeServer, websocket.StatusInternalError, "internal error")
				done <- false
			}
		}()
		done <- so.handlePacket(data)
	}()
	return <-done
}

// readLoop reads frames until the connection ends.
func (so *socket) readLoop() {
	for {
		typ, data, err := so.conn.Read(context.Background())
		if err != nil {
			switch status := websocket.CloseStatus(err); {
			case status == websocket.StatusNormalClosure || status == websocket.StatusGoingAway:
				so.fail(causeClient, websocket.StatusNormalClosure, "")
			case status == websocket.StatusMessageTooBig || strings.Contains(err.Error(), "read limited"):
				so.fail(causeParse, websocket.StatusMessageTooBig, "message too big")
			default:
				// Also a connection we closed: the first cause recorded wins.
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
		if !so.handleEngine(data) {
			return
		}
	}
}

// handleEngine handles one Engine.IO text packet, from a WebSocket frame
// or a polling body; false ends the connection.
func (so *socket) handleEngine(data []byte) bool {
	et, payload, err := protocol.DecodeEngine(data)
	if err != nil {
		so.fail(causeParse, websocket.StatusProtocolError, "bad engine.io packet")
		return false
	}
	switch et {
	case protocol.EnginePong:
		so.pongAt.Store(time.Now().UnixNano())
	case protocol.EngineMessage:
		return so.handleOffStack(payload)
	case protocol.EngineClose:
		so.fail(causeClient, websocket.StatusNormalClosure, "")
		return false
	case protocol.EngineNoop:
	default:
		// open, upgrade, and ping (a v4 client never pings)
		so.fail(causeParse, websocket.StatusProtocolError, "unexpected engine.io packet")
		return false
	}
	return true
}
