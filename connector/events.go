package connector

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/coder/websocket"

	"github.com/roomstream/roomstream/connector/protocol"
	"github.com/roomstream/roomstream/schemas"
)

// handlePacket handles one Socket.IO packet; false ends the connection.
func (so *socket) handlePacket(data []byte) bool {
	p, err := protocol.Decode(data)
	if err != nil {
		so.end(causeParse, websocket.StatusProtocolError, "invalid socket.io packet")
		return false
	}
	switch p.Type {
	case protocol.Connect:
		q := p
		return so.offStack(func() { so.handleConnect(q) })
	case protocol.Disconnect:
		if p.Namespace == "/" {
			so.end(causeClient, websocket.StatusNormalClosure, "")
			return false
		}
	case protocol.Event, protocol.BinaryEvent:
		if !so.connected || p.Namespace != "/" {
			so.end(causeParse, websocket.StatusProtocolError, "event before CONNECT")
			return false
		}
		if p.Attachments > 0 {
			so.skipBinary = p.Attachments
			so.refuse(p, "", "", schemas.NewError(schemas.CodeInvalidPayload, "binary attachments are not supported; send JSON"))
			return true
		}
		return so.handleEvent(&p)
	case protocol.Ack, protocol.BinaryAck:
		// roomstream never asks clients for acknowledgements.
		so.skipBinary = p.Attachments
	default:
		so.end(causeParse, websocket.StatusProtocolError, "unexpected socket.io packet")
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

// parseConnectAuth decodes the data of a CONNECT (none: an empty auth) and
// checks the shape of its recovery fields, so that a malformed pid or
// offset is refused before anything reaches Redis. Absent and null fields
// are empty; other fields are ignored.
func parseConnectAuth(data json.RawMessage) (connectAuth, *schemas.Error) {
	var auth connectAuth
	if len(data) == 0 {
		return auth, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil || fields == nil {
		return auth, schemas.NewError(schemas.CodeInvalidToken, "auth must be an object with a string token")
	}
	str := func(name string, dst *string) bool {
		raw, ok := fields[name]
		return !ok || string(raw) == "null" || json.Unmarshal(raw, dst) == nil
	}
	switch {
	case !str("token", &auth.Token):
		return connectAuth{}, schemas.NewError(schemas.CodeInvalidToken, "auth.token must be a string")
	case !str("pid", &auth.PID) || auth.PID != "" && !validRecoveryID(auth.PID):
		return connectAuth{}, schemas.NewError(schemas.CodeInvalidPayload, "auth.pid is not a recovery id this server gave")
	case !str("offset", &auth.Offset) || auth.Offset != "" && !validOffset(auth.Offset):
		return connectAuth{}, schemas.NewError(schemas.CodeInvalidPayload, "auth.offset is not an offset this server gave")
	}
	return auth, nil
}

func (so *socket) handleConnect(p protocol.Packet) {
	s := so.srv
	if p.Namespace != "/" {
		if len(p.Namespace) > maxEventName {
			// Not echoed: a client cannot make us send back what it sent.
			so.end(causeParse, websocket.StatusPolicyViolation, "namespace name too long")
			return
		}
		so.enqueueRaw(protocol.ConnectErrorFrame(p.Namespace, "Invalid namespace", nil))
		so.countRefusal()
		return
	}
	if so.connected {
		return
	}
	auth, aerr := parseConnectAuth(p.Data)
	if aerr != nil {
		s.m.authFailures.WithLabelValues(string(aerr.Code)).Inc()
		so.connectError(aerr)
		return
	}
	if auth.Token != "" {
		ident, verr := s.verify(auth.Token)
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
			so.sessionError(err)
			return
		}
	}
	so.accept()
	if so.authed {
		so.authenticated()
		s.log.Debug("socket authenticated", "socket", so.sid, "user", so.ident.UserID)
	} else {
		so.authTimer = time.AfterFunc(s.cfg.AuthTimeout, func() { so.end(causeServer, websocket.StatusPolicyViolation, "not authenticated in time") })
	}
}

// accept registers the socket and answers the CONNECT.
func (so *socket) accept() {
	s := so.srv
	so.connectTimer.Stop()
	s.mu.Lock()
	s.putSocket(so)
	s.mu.Unlock()
	so.connected = true
	so.acceptedOne()
	so.enqueueRaw(protocol.ConnectFrame(so.sid, so.pid))
}

// connectError refuses a CONNECT; the client sees err.message and err.data
// in its connect_error handler and does not retry on its own.
func (so *socket) connectError(e *schemas.Error) {
	so.enqueueRaw(protocol.ConnectErrorFrame("/", "authentication failed: "+e.Message,
		map[string]any{"code": e.Code, "reason": e.Message}))
	if e.Code != schemas.CodeUnavailable {
		so.countRefusal()
	}
}

// sessionError refuses a CONNECT whose session could not be opened.
func (so *socket) sessionError(err error) {
	var lim *limitError
	if errors.As(err, &lim) {
		so.connectError(lim.e)
		return
	}
	so.srv.log.Warn("open session", "err", err)
	so.connectError(schemas.NewError(schemas.CodeUnavailable, ""))
}

// watchToken arms the socket's token expiry: when the token it
// authenticated with expires, the client is told (`error` with
// expired_token) and has TOKEN_GRACE to send `authenticate` with a fresh
// token of the same user, which arms the watch again; otherwise it is
// disconnected. Called on the read loop's side.
func (so *socket) watchToken() {
	exp := so.ident.Expires
	if exp.IsZero() {
		return
	}
	gen := so.tokenGen.Add(1)
	grace := so.srv.cfg.TokenGrace
	var warned bool
	var fire func()
	fire = func() {
		if so.tokenGen.Load() != gen {
			return // a fresh token took over
		}
		if !warned && grace > 0 {
			warned = true
			e := schemas.Errorf(schemas.CodeExpiredToken, "your token expired; send 'authenticate' with a fresh one within %s", grace)
			so.emit(schemas.EventError, mustJSON(e))
			so.qmu.Lock()
			if !so.timersOff {
				so.tokenTimer = time.AfterFunc(grace, fire)
			}
			so.qmu.Unlock()
			return
		}
		so.srv.m.authFailures.WithLabelValues(string(schemas.CodeExpiredToken)).Inc()
		so.end(causeServer, websocket.StatusPolicyViolation, "token expired")
	}
	so.qmu.Lock()
	defer so.qmu.Unlock()
	if so.tokenTimer != nil {
		so.tokenTimer.Stop()
	}
	if so.timersOff {
		return
	}
	so.tokenTimer = time.AfterFunc(time.Until(exp), fire)
}

// maxEventName is the longest event (and namespace) name the connector
// reads; longer ones are refused without being echoed back.
const maxEventName = 64

// countRefusal counts a refusal; a socket refused MAX_REFUSALS times in a row
// (nothing accepted in between) is disconnected: it is broken or hostile,
// and every refusal costs an answer.
func (so *socket) countRefusal() {
	so.amu.Lock()
	so.refusals++
	tooMany := so.refusals >= so.refusalLimit()
	so.amu.Unlock()
	if tooMany {
		so.end(causeServer, websocket.StatusPolicyViolation, "too many refused events")
	}
}

// refusalLimit is MAX_REFUSALS.
func (so *socket) refusalLimit() int {
	if limit := so.srv.cfg.MaxRefusals; limit > 0 {
		return limit
	}
	return 50
}

// acceptedOne starts the count of refusals in a row again.
func (so *socket) acceptedOne() {
	so.amu.Lock()
	so.refusals = 0
	so.amu.Unlock()
}

// authenticated tells the client who it is, and watches its token.
func (so *socket) authenticated() {
	if so.authTimer != nil {
		so.authTimer.Stop()
	}
	so.watchToken()
	so.emit(schemas.EventAuthSuccessful, mustJSON(schemas.AuthSuccessPayload{UserID: so.ident.UserID, SessionID: so.session}))
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
		if e.Code != schemas.CodeUnavailable {
			so.countRefusal()
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
	ident, verr := s.verify(payload.Token)
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
			var lim *limitError
			if errors.As(err, &lim) {
				fail(lim.e)
				return
			}
			s.log.Warn("open session", "err", err)
			fail(schemas.NewError(schemas.CodeUnavailable, "could not open a session, retry"))
			return
		}
	}
	s.m.eventsIn.WithLabelValues(schemas.EventAuthenticate, "accepted").Inc()
	so.acceptedOne()
	so.authenticated()
	if !again {
		s.log.Debug("socket authenticated", "socket", so.sid, "user", so.ident.UserID)
	}
	if p.HasID {
		so.ack(p.ID, mustJSON(schemas.Ack{OK: true, Auth: &schemas.AuthSuccessPayload{UserID: ident.UserID, SessionID: so.session}}))
	}
	if again {
		// New claims: the rooms they no longer allow are left.
		so.recheckRooms(false)
	}
}

// refuse answers a refused event: with its ack when it asked for one,
// else with an `error` event.
//
// Every refusal but `unavailable` (our fault, not the client's) counts
// towards MAX_REFUSALS.
func (so *socket) refuse(p protocol.Packet, event, room string, e *schemas.Error) {
	e = e.WithEvent(event, room)
	so.srv.m.eventsIn.WithLabelValues(metricEvent(event), string(e.Code)).Inc()
	if e.Code != schemas.CodeUnavailable {
		defer so.countRefusal()
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
