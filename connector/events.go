package connector

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/coder/websocket"

	"github.com/roomstream/roomstream/connector/protocol"
	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// handlePacket handles one Socket.IO packet; false ends the connection.
func (so *socket) handlePacket(data []byte) bool {
	p, err := protocol.Decode(data)
	if err != nil {
		so.fail(causeParse, websocket.StatusProtocolError, "invalid socket.io packet")
		return false
	}
	switch p.Type {
	case protocol.Connect:
		so.handleConnect(p)
	case protocol.Disconnect:
		if p.Namespace == "/" {
			so.fail(causeClient, websocket.StatusNormalClosure, "")
			return false
		}
	case protocol.Event, protocol.BinaryEvent:
		if !so.connected || p.Namespace != "/" {
			so.fail(causeParse, websocket.StatusProtocolError, "event before CONNECT")
			return false
		}
		if p.Attachments > 0 {
			so.skipBinary = p.Attachments
			so.refuse(p, "", "", schemas.NewError(schemas.CodeInvalidPayload, "binary attachments are not supported; send JSON"))
			return true
		}
		so.handleEvent(p)
	case protocol.Ack, protocol.BinaryAck:
		// roomstream never asks clients for acknowledgements.
		so.skipBinary = p.Attachments
	default:
		so.fail(causeParse, websocket.StatusProtocolError, "unexpected socket.io packet")
		return false
	}
	return true
}

// connectAuth is the auth object of a CONNECT, plus the recovery fields the
// client adds on reconnection.
type connectAuth struct {
	Token  string `json:"token"`
	PID    string `json:"pid"`
	Offset string `json:"offset"`
}

func (so *socket) handleConnect(p protocol.Packet) {
	s := so.srv
	if p.Namespace != "/" {
		so.enqueueRaw(protocol.ConnectErrorFrame(p.Namespace, "Invalid namespace", nil))
		return
	}
	if so.connected {
		return
	}
	var auth connectAuth
	if len(p.Data) > 0 {
		if err := json.Unmarshal(p.Data, &auth); err != nil {
			so.connectError(schemas.Errorf(schemas.CodeInvalidToken, "auth must be an object with a string token: %v", err))
			return
		}
	}
	if auth.Token != "" {
		ident, verr := s.verifier.Verify(auth.Token)
		if verr != nil {
			s.m.authFailures.WithLabelValues(string(verr.Code)).Inc()
			so.connectError(verr)
			return
		}
		if verr := s.checkRevoked(ident); verr != nil {
			so.connectError(verr)
			return
		}
		so.ident, so.authed = ident, true
	}
	if auth.PID != "" && s.recover(so, auth) {
		return
	}
	so.sid, so.pid = newID()[:20], newID()
	if so.authed {
		if err := s.openSession(so); err != nil {
			s.log.Warn("open session", "err", err)
			so.connectError(schemas.NewError(schemas.CodeUnavailable, ""))
			return
		}
	}
	so.accept()
	if so.authed {
		so.authenticated(false)
	} else {
		so.authTimer = time.AfterFunc(s.cfg.AuthTimeout, func() { so.fail(causeServer, websocket.StatusPolicyViolation, "not authenticated in time") })
	}
}

// accept registers the socket and answers the CONNECT.
func (so *socket) accept() {
	s := so.srv
	so.connectTimer.Stop()
	s.mu.Lock()
	s.sockets[so.sid] = so
	s.mu.Unlock()
	so.connected = true
	so.enqueueRaw(protocol.ConnectFrame(so.sid, so.pid))
}

// connectError refuses a CONNECT; the client sees err.message and err.data
// in its connect_error handler and does not retry on its own.
func (so *socket) connectError(e *schemas.Error) {
	so.enqueueRaw(protocol.ConnectErrorFrame("/", "authentication failed: "+e.Message,
		map[string]any{"code": e.Code, "reason": e.Message}))
}

// authenticated tells the client who it is.
func (so *socket) authenticated(again bool) {
	if so.authTimer != nil {
		so.authTimer.Stop()
	}
	so.emit(schemas.EventAuthSuccessful, mustJSON(schemas.AuthSuccessPayload{UserID: so.ident.UserID, SessionID: so.session}))
	if !again {
		so.srv.log.Debug("socket authenticated", "socket", so.sid, "user", so.ident.UserID)
	}
}

func (so *socket) handleEvent(p protocol.Packet) {
	s := so.srv
	name, args, err := protocol.EventArgs(p.Data)
	if err != nil {
		so.fail(causeParse, websocket.StatusProtocolError, "invalid event")
		return
	}
	if !so.limiter.Allow() {
		s.m.rateLimited.Inc()
		so.refusals++
		if so.refusals > int(s.cfg.RateLimit*5)+s.cfg.RateBurst {
			so.fail(causeServer, websocket.StatusPolicyViolation, "rate limit exceeded")
			return
		}
		so.refuse(p, name, "", schemas.Errorf(schemas.CodeRateLimited, "more than %g events per second", s.cfg.RateLimit))
		return
	}
	so.refusals = 0
	if name == schemas.EventAuthenticate {
		so.handleAuthenticate(p, args)
		return
	}
	if !so.authed {
		so.refuse(p, name, "", schemas.NewError(schemas.CodeUnauthorized, "authenticate first: send a token in the handshake auth or an 'authenticate' event"))
		return
	}
	if !schemas.IsRoomEvent(name) {
		so.refuse(p, name, "", schemas.Errorf(schemas.CodeUnknownEvent, "unknown event %q", name))
		return
	}
	if len(args) == 0 {
		so.refuse(p, name, "", schemas.NewError(schemas.CodeInvalidPayload, "the event needs a payload object"))
		return
	}
	cmd, verr := schemas.ParseCommand(name, args[0], so.ident.UserID)
	if verr != nil {
		so.refuse(p, name, verr.RoomID, verr)
		return
	}
	// Not tied to the connection: an event being appended when its socket
	// closes is appended all the same.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if name == schemas.EventJoinRoom {
		if _, in := so.rooms[cmd.RoomID]; !in {
			if len(so.rooms) >= s.cfg.MaxRooms {
				so.refuse(p, name, cmd.RoomID, schemas.Errorf(schemas.CodeTooManyRooms, "a socket may be in %d rooms at most", s.cfg.MaxRooms))
				return
			}
			// Recorded before the join is queued, so that whoever cleans up
			// after this socket knows to look in this room.
			if err := s.c.Redis().SAdd(ctx, s.c.Keys.SocketRooms(so.sid), cmd.RoomID).Err(); err != nil {
				so.unavailable(p, name, cmd.RoomID, err)
				return
			}
			so.rooms[cmd.RoomID] = struct{}{}
		}
	}
	env := &streams.Envelope{
		Type: name, RoomID: cmd.RoomID, UserID: so.ident.UserID, UserName: so.ident.UserName,
		SessionID: so.session, SocketID: so.sid, ConnectorID: s.id,
		AckID: p.ID, HasAck: p.HasID, Data: cmd.Data, At: time.Now(),
	}
	if s.draining.Load() {
		so.refuse(p, name, cmd.RoomID, schemas.NewError(schemas.CodeUnavailable, "this connector is restarting; send again after reconnecting"))
		return
	}
	so.seq++
	env.Origin, env.Seq = so.origin, so.seq
	if p.HasID {
		so.pendingAcks.Add(1)
	}
	if _, err := s.appendRetrying(ctx, env); err != nil {
		if p.HasID {
			so.pendingAcks.Add(-1)
		}
		so.unavailable(p, name, cmd.RoomID, err)
		return
	}
	s.m.eventsIn.WithLabelValues(name, "accepted").Inc()
	if name == schemas.EventLeaveRoom {
		delete(so.rooms, cmd.RoomID)
		if err := s.c.Redis().SRem(ctx, s.c.Keys.SocketRooms(so.sid), cmd.RoomID).Err(); err != nil {
			s.log.Warn("forget room of socket", "socket", so.sid, "room", cmd.RoomID, "err", err)
		}
	}
}

func (so *socket) unavailable(p protocol.Packet, event, room string, err error) {
	so.srv.log.Warn("event not accepted: Redis unavailable", "event", event, "socket", so.sid, "err", err)
	so.refuse(p, event, room, schemas.NewError(schemas.CodeUnavailable, "the event was not accepted, retry"))
}

// handleAuthenticate serves the `authenticate` event: the socket connected
// without a token (or refreshes it).
func (so *socket) handleAuthenticate(p protocol.Packet, args []json.RawMessage) {
	s := so.srv
	fail := func(e *schemas.Error) {
		s.m.authFailures.WithLabelValues(string(e.Code)).Inc()
		s.m.eventsIn.WithLabelValues(schemas.EventAuthenticate, string(e.Code)).Inc()
		body := mustJSON(schemas.AuthFailurePayload{Reason: e.Message, Code: e.Code})
		so.emit(schemas.EventAuthFailed, body)
		if p.HasID {
			so.ack(p.ID, mustJSON(schemas.Ack{Error: e.WithEvent(schemas.EventAuthenticate, "")}))
		}
	}
	if len(args) == 0 {
		fail(schemas.NewError(schemas.CodeInvalidToken, "authenticate needs {token}"))
		return
	}
	payload, verr := schemas.ParseAuthenticate(args[0])
	if verr != nil {
		fail(schemas.NewError(schemas.CodeInvalidToken, verr.Message))
		return
	}
	ident, verr := s.verifier.Verify(payload.Token)
	if verr != nil {
		fail(verr)
		return
	}
	if verr := s.checkRevoked(ident); verr != nil {
		fail(verr)
		return
	}
	again := so.authed
	if again && ident.UserID != so.ident.UserID {
		fail(schemas.Errorf(schemas.CodeUnauthorized, "this socket is authenticated as %s; connect again to change user", so.ident.UserID))
		return
	}
	so.ident, so.authed = ident, true
	if !again {
		if err := s.openSession(so); err != nil {
			so.authed = false
			s.log.Warn("open session", "err", err)
			fail(schemas.NewError(schemas.CodeUnavailable, "could not open a session, retry"))
			return
		}
	}
	s.m.eventsIn.WithLabelValues(schemas.EventAuthenticate, "accepted").Inc()
	so.authenticated(again)
	if p.HasID {
		so.ack(p.ID, mustJSON(schemas.Ack{OK: true, Auth: &schemas.AuthSuccessPayload{UserID: ident.UserID, SessionID: so.session}}))
	}
}

// refuse answers a refused event: with its ack when it asked for one,
// else with an `error` event.
func (so *socket) refuse(p protocol.Packet, event, room string, e *schemas.Error) {
	e = e.WithEvent(event, room)
	if event != "" {
		so.srv.m.eventsIn.WithLabelValues(metricEvent(event), string(e.Code)).Inc()
	}
	if p.HasID {
		so.ack(p.ID, mustJSON(schemas.Ack{Error: e}))
		return
	}
	so.emit(schemas.EventError, mustJSON(e))
}

// metricEvent keeps unknown event names out of metric labels.
func metricEvent(name string) string {
	if schemas.IsRoomEvent(name) || name == schemas.EventAuthenticate {
		return name
	}
	return "other"
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(errors.New("connector: encode: " + err.Error()))
	}
	return b
}
