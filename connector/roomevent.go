package connector

import (
	"context"
	"encoding/json"

	"github.com/coder/websocket"

	"github.com/roomstream/roomstream/connector/protocol"
	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// Room events: checked, parsed and queued for appending. The frequent one
// is handled on the read loop's goroutine, whose stack must stay small
// (reader.go); the others run off it.

// handleEvent handles an EVENT packet: `authenticate` or a room event.
// The frequent one, a file-upload-progress in the plain form clients
// send, is parsed and queued on the read loop's stack; the others go
// through encoding/json, or wait for Redis (joins and leaves), and run
// off it. False ends the connection.
func (so *socket) handleEvent(p *protocol.Packet) bool {
	name, args := p.Name, p.Args
	if args == nil && name == "" {
		// Not from Decode (which splits every EVENT).
		var err error
		if name, args, err = protocol.EventArgs(p.Data); err != nil {
			so.end(causeParse, websocket.StatusProtocolError, "invalid event")
			return false
		}
	}
	if e := so.eventRefusal(name); e != nil {
		// Encoding the answer takes encoding/json's deep stack.
		q := *p
		return so.offStack(func() { so.refuse(q, "", "", e) })
	}
	if name == schemas.EventFileUploadProgress && so.authed && len(args) > 0 {
		if cmd := schemas.ParsePlainProgress(args[0], so.ident.UserID); cmd != nil {
			so.queueEvent(p, name, cmd)
			return true
		}
	}
	q := *p
	return so.offStack(func() { so.handleOtherEvent(&q, name, args) })
}

// handleOtherEvent handles an event but a plain progress report, off the
// read loop's stack: `authenticate`, or a room event, checked, parsed,
// and queued (joins and leaves also wait for their append).
func (so *socket) handleOtherEvent(p *protocol.Packet, name string, args []json.RawMessage) {
	if name == schemas.EventAuthenticate {
		so.handleAuthenticate(*p, args)
		return
	}
	if !so.admitRoomEvent(p, name, args) {
		return
	}
	cmd, verr := schemas.ParseCommand(name, args[0], so.ident.UserID)
	if verr != nil {
		so.refuse(*p, name, verr.RoomID, verr)
		return
	}
	if name == schemas.EventJoinRoom || name == schemas.EventLeaveRoom {
		so.changeRooms(*p, name, cmd)
		return
	}
	so.queueEvent(p, name, cmd)
}

// eventRefusal refuses an event whose name is too long or that is past
// the socket's rate (neither is echoed: a flood gets the shortest answer
// there is).
func (so *socket) eventRefusal(name string) *schemas.Error {
	s := so.srv
	if len(name) > maxEventName {
		return schemas.Errorf(schemas.CodeUnknownEvent, "event name longer than %d bytes", maxEventName)
	}
	if !so.limiter.Allow() {
		s.m.rateLimited.Inc()
		return schemas.Errorf(schemas.CodeRateLimited, "more than %g events per second", s.cfg.RateLimit)
	}
	return nil
}

// admitRoomEvent refuses a room event of a socket not authenticated, an
// unknown event, and one without a payload.
func (so *socket) admitRoomEvent(p *protocol.Packet, name string, args []json.RawMessage) bool {
	switch {
	case !so.authed:
		so.refuse(*p, name, "", schemas.NewError(schemas.CodeUnauthorized, "authenticate first: send a token in the handshake auth or an 'authenticate' event"))
	case !schemas.IsRoomEvent(name):
		so.refuse(*p, name, "", schemas.NewError(schemas.CodeUnknownEvent, "unknown event"))
	case len(args) == 0:
		so.refuse(*p, name, "", schemas.NewError(schemas.CodeInvalidPayload, "the event needs a payload object"))
	default:
		return true
	}
	return false
}

// queueEvent queues an accepted room event for appending (appendq.go),
// numbered after the socket's earlier ones; appendDone answers it if it
// cannot be appended in time. Nil when it is refused.
func (so *socket) queueEvent(p *protocol.Packet, name string, cmd *schemas.Command) *appendReq {
	if so.backlogRefused(p, name, cmd.RoomID) {
		return nil
	}
	return so.appendEvent(p, name, cmd)
}

// backlogRefused refuses an event of a partition the workers are behind
// on.
func (so *socket) backlogRefused(p *protocol.Packet, name, room string) bool {
	s := so.srv
	if !s.backlogFull(room) {
		return false
	}
	s.m.backlogRefused.Inc()
	so.refuse(*p, name, room, schemas.NewError(schemas.CodeUnavailable, "the service is behind; retry in a moment"))
	return true
}

// appendEvent queues an event for appending (nil: refused, the connector
// drains).
func (so *socket) appendEvent(p *protocol.Packet, name string, cmd *schemas.Command) *appendReq {
	s := so.srv
	if s.draining.Load() {
		so.refuse(*p, name, cmd.RoomID, schemas.NewError(schemas.CodeUnavailable, "this connector is restarting; send again after reconnecting"))
		return nil
	}
	so.seq++
	r := so.newAppendReq(p, name, cmd.RoomID)
	r.env = streams.Envelope{
		Type: name, RoomID: cmd.RoomID, UserID: so.ident.UserID, UserName: so.ident.UserName,
		SessionID: so.session, SocketID: so.sid, ConnectorID: s.id,
		AckID: p.ID, HasAck: p.HasID, Data: cmd.Data, At: s.now(),
		Origin: so.origin, Seq: so.seq,
	}
	if p.HasID {
		so.pendingAcks.Add(1)
	}
	so.queueAppend(r)
	return r
}

// changeRooms serves join-room and leave-room. They wait for the
// socket's earlier events and for their own append, so that the socket's
// rooms (so.rooms, and its room set in Redis, which whoever removes the
// socket from its rooms reads) follow what was appended, in order.
func (so *socket) changeRooms(p protocol.Packet, name string, cmd *schemas.Command) {
	room := cmd.RoomID
	if so.backlogRefused(&p, name, room) {
		return
	}
	// Not tied to the connection: a join or leave being appended when its
	// socket closes is appended all the same.
	ctx, cancel := context.WithTimeout(context.Background(), appendTimeout)
	defer cancel()
	if name == schemas.EventJoinRoom && !so.admitJoin(ctx, p, room) {
		return
	}
	r := so.appendEvent(&p, name, cmd)
	if r == nil {
		return // refused
	}
	so.awaitAppend(r)
	if name == schemas.EventLeaveRoom && r.err == nil {
		so.leftRoom(ctx, room)
	}
}

func (so *socket) unavailable(p protocol.Packet, event, room string, err error) {
	so.srv.log.Warn("event not accepted: Redis unavailable", "event", event, "socket", so.sid, "err", err)
	if event == schemas.EventJoinRoom {
		so.joinNotAppended(room)
	}
	so.refuse(p, event, room, schemas.NewError(schemas.CodeUnavailable, "the event was not accepted, retry"))
}
