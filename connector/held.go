package connector

import (
	"context"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/roomstream/roomstream/connector/auth"
	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// held is a socket whose connection dropped: its rooms keep it for the
// recovery window, then it leaves them unless it recovered.
type held struct {
	sid     string
	ident   auth.Identity
	pid     string
	session string
	rooms   []string
	timer   *time.Timer
}

// settle decides what happens to a socket whose connection ended.
func (s *Server) settle(so *socket) {
	if so.sid == "" || so.superseded.Load() {
		return
	}
	// A recovery of this socket arriving now waits until it is held (or
	// closed) instead of finding it nowhere.
	settled := make(chan struct{})
	s.mu.Lock()
	s.dropSocket(so)
	s.settling[so.sid] = settled
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.settling[so.sid] == settled {
			delete(s.settling, so.sid)
		}
		s.mu.Unlock()
		close(settled)
	}()
	if !so.authed {
		return
	}
	h := &held{sid: so.sid, ident: so.ident, pid: so.pid, session: so.session, rooms: so.rooms.list()}
	if so.kicked.Load() {
		// Kicked as its connection dropped (the drop was recorded
		// first): it is not kept for recovery.
		s.close(h, schemas.ReasonServerDisconnect)
		return
	}
	switch so.cause {
	case causeClient, causeServer:
		// Goodbye: leave now.
		s.close(h, schemas.ReasonDisconnected)
	case causeKicked:
		s.close(h, schemas.ReasonServerDisconnect)
	case causeDrain:
		// This connector is stopping: the client recovers on another one,
		// or a worker removes it once our heartbeat is gone.
	default:
		s.hold(h)
	}
}

// hold keeps a dropped socket in its rooms for the recovery window.
func (s *Server) hold(h *held) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	won, err := s.c.ClaimSocket(ctx, h.sid, s.id, s.id, streams.SocketHeld)
	if err != nil {
		s.log.Warn("mark socket held", "socket", h.sid, "err", err)
	} else if !won {
		return // already recovered on another connector
	} else {
		if err := s.c.HoldSocket(ctx, h.sid, h.pid, s.now(), s.cfg.RecoveryWindow); err != nil {
			s.log.Warn("mark socket held", "socket", h.sid, "err", err)
		}
	}
	s.mu.Lock()
	s.held[h.sid] = h
	h.timer = time.AfterFunc(s.cfg.RecoveryWindow, func() { s.expire(h.sid) })
	s.mu.Unlock()
}

// expire ends the recovery window of a held socket.
func (s *Server) expire(sid string) {
	s.mu.Lock()
	h, ok := s.held[sid]
	delete(s.held, sid)
	live := s.sockets[sid] != nil // recovered here meanwhile
	s.mu.Unlock()
	if ok && !live && !s.draining.Load() {
		s.close(h, schemas.ReasonRecoveryOver)
	}
}

// unhold takes a held socket back for a recovery on this connector; nil
// when it is not held here (its window ended, or it never was).
func (s *Server) unhold(sid string) *held {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.held[sid]
	if !ok {
		return nil
	}
	h.timer.Stop()
	delete(s.held, sid)
	return h
}

// close removes a socket from its rooms (through their partitions, after
// everything it sent) and deletes its keys. It first claims the socket, so
// that a concurrent recovery on another connector and this close cannot
// both win. Redis errors are retried until the connector stops; then the
// reaper finishes the job.
func (s *Server) close(h *held, reason string) {
	bo := streams.NewBackoff(200*time.Millisecond, 5*time.Second)
	for attempt := 0; ; attempt++ {
		err := s.closeOnce(h, reason)
		if err == nil {
			return
		}
		if s.draining.Load() || attempt >= 30 {
			s.log.Error("could not remove socket from its rooms; the reaper will once this connector is gone",
				"socket", h.sid, "err", err)
			return
		}
		bo.Sleep(context.Background())
	}
}

func (s *Server) closeOnce(h *held, reason string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	won, err := s.c.ClaimSocket(ctx, h.sid, s.id, "", streams.SocketClosed)
	if err != nil {
		return err
	}
	if !won {
		// Recovered on another connector (or already closed).
		return s.c.UnlistSocket(ctx, s.id, h.sid)
	}
	return s.finish(ctx, h, reason)
}

// finish queues the socket's disconnect in each room and deletes its keys.
func (s *Server) finish(ctx context.Context, h *held, reason string) error {
	now := s.now()
	for _, room := range h.rooms {
		env := &streams.Envelope{Type: schemas.CmdDisconnect, RoomID: room, SocketID: h.sid, ConnectorID: s.id,
			UserID: h.ident.UserID, UserName: h.ident.UserName, SessionID: h.session, Reason: reason, At: now}
		if _, err := s.c.Append(ctx, env); err != nil {
			return err
		}
	}
	// A clean close ends the session (nothing will look it up again); a
	// drop leaves it for the design's 24 h.
	return s.c.DeleteSocket(ctx, streams.ClosedSocket{ID: h.sid, UserID: h.ident.UserID, PID: h.pid, Connector: s.id,
		Session: h.session, SessionDone: reason == schemas.ReasonDisconnected, At: now})
}

// awaitSettled waits (a few seconds at most) for a socket whose
// connection ended on this connector to be held or closed; false when it
// was not settling.
func (s *Server) awaitSettled(sid string) bool {
	s.mu.RLock()
	ch := s.settling[sid]
	s.mu.RUnlock()
	if ch == nil {
		return false
	}
	select {
	case <-ch:
	case <-time.After(moveTimeout):
	}
	return true
}

// kick closes socket sid for good, live or held for recovery (HTTP API
// disconnect): a live client gets a Socket.IO DISCONNECT (it does not
// reconnect on its own); either way it leaves its rooms at once.
func (s *Server) kick(sid, reason string) { s.kickSocket(sid, s.socket(sid), reason) }

// kickSocket is kick with sid's live socket looked up (nil: none here).
func (s *Server) kickSocket(sid string, so *socket, reason string) {
	if reason == "" {
		reason = "disconnected by the server"
	}
	for len(reason) > 100 { // a close reason is at most 123 bytes; cut whole characters
		_, size := utf8.DecodeLastRuneInString(reason)
		reason = reason[:len(reason)-size]
	}
	if so != nil {
		so.kicked.Store(true)
		so.enqueueRaw([]byte("41"))
		so.end(causeKicked, websocket.StatusPolicyViolation, reason)
	}
	go func() {
		h := s.unhold(sid)
		if h == nil && s.awaitSettled(sid) {
			// Its connection had just ended: it is being recorded as
			// held (Redis may say so already); take it once it is.
			h = s.unhold(sid)
		}
		if h != nil {
			s.close(h, schemas.ReasonServerDisconnect)
		}
	}()
}
