package connector

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/roomstream/roomstream/connector/auth"
	"github.com/roomstream/roomstream/connector/protocol"
	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// Connection state recovery. A client that reconnects sends the pid and
// offset it was given; if its socket is still within its recovery window
// (held by its connector, or orphaned by a connector that died but has not
// been reaped yet), it gets the same socket id and rooms back and every
// event it missed, once and in order, before new ones:
//
//  1. The socket is claimed (socket:{id}.connector old -> this), so that
//     the old connector's recovery timer and the reaper both lose.
//  2. It is registered here in "recovering" mode: events routed here are
//     buffered.
//  3. When it came from another connector, a socket-move goes through the
//     partition of each of its rooms; the worker answers each with $moved.
//     After the last one, no room sends it anything on the old stream.
//  4. The socket catches up: the old connector's stream is read from the
//     client's offset for every event meant for this socket,
//     deduplicated (catchup.go). At most RECOVERY_MAX_ENTRIES entries are
//     read: a socket that missed more is closed (its rooms hear it left,
//     recovery_expired) and the client gets a fresh session.
//  5. CONNECT is answered with the same pid (socket.recovered === true),
//     then the missed events are resent, then the buffer, then live
//     traffic.
//
// Room members see nothing: the socket never left its rooms.

// moveTimeout bounds the wait for rooms to confirm a move.
const moveTimeout = 5 * time.Second

type recovery struct {
	mu      sync.Mutex
	waiting map[string]bool
	done    chan struct{}
}

func (r *recovery) confirm(room string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.waiting[room] {
		return
	}
	delete(r.waiting, room)
	if len(r.waiting) == 0 {
		close(r.done)
	}
}

// moved is called by the outbound reader, which holds s.mu for reading,
// for each $moved confirmation.
func (s *Server) moved(sid string, body []byte) {
	if r := s.recoveries[sid]; r != nil {
		r.confirm(roomOf(body))
	}
}

// recoveryIDLen is the length of the pids newID makes (16 random bytes,
// URL-safe base64).
const recoveryIDLen = 22

// validRecoveryID reports whether pid has the shape of the recovery ids
// this server hands out (it becomes part of a Redis key).
func validRecoveryID(pid string) bool {
	if len(pid) != recoveryIDLen {
		return false
	}
	for i := 0; i < len(pid); i++ {
		c := pid[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validOffset reports whether offset is a stream id as this server sends
// them ("ms-seq", the last argument of the events it delivers).
func validOffset(offset string) bool {
	ms, seq, found := strings.Cut(offset, "-")
	if !found || !digits(ms) || !digits(seq) {
		return false
	}
	_, err := streams.ParseID(offset) // in range
	return err == nil
}

// digits reports whether s is 1-20 decimal digits.
func digits(s string) bool {
	if len(s) == 0 || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// recover tries to resume the socket of ca.PID on so. It returns false
// when the client must get a fresh session instead.
func (s *Server) recover(so *socket, ca connectAuth) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	res := func(r string) { s.m.recoveries.WithLabelValues(r).Inc() }
	sid, info, why := s.findRecoverable(ctx, so, ca)
	if why != "" {
		res(why)
		return false
	}
	old := info["connector"]
	rooms, why := s.takeOver(ctx, so, ca, sid, info)
	if why != "" {
		res(why)
		return false
	}
	base := s.startRecovering(ctx, so, sid, old, rooms)
	if !s.resume(ctx, so, ca, old, rooms, base) {
		res("too_much_missed")
		return false
	}
	res("recovered")
	// The token it came back with may allow fewer rooms.
	so.recheckRooms(true)
	return true
}

// findRecoverable finds the socket a recovering client names: its id and
// record, or why there is none to recover (the recoveries metric's
// result).
func (s *Server) findRecoverable(ctx context.Context, so *socket, ca connectAuth) (sid string, info map[string]string, why string) {
	if !validRecoveryID(ca.PID) || ca.Offset != "" && !validOffset(ca.Offset) {
		return "", nil, "malformed" // handleConnect refuses these; never ask Redis about them
	}
	sid, info, err := s.c.ResumableSocket(ctx, ca.PID)
	if sid == "" {
		return "", nil, "unknown_pid"
	}
	if err != nil || info["pid"] != ca.PID || info["connector"] == "" || info["state"] == streams.SocketClosed {
		return "", nil, "gone"
	}
	if !so.authed {
		// The recovery id alone is no credential: the client shows a
		// valid token of the same user (checked, revocation included,
		// as for any connection).
		return "", nil, "no_token"
	}
	if so.ident.UserID != info["userId"] {
		return "", nil, "other_user"
	}
	return sid, info, ""
}

// takeOver makes socket sid this connection's: the old connection (here)
// is let go, the socket claimed from its connector, its rooms read.
// Without a usable offset the missed events cannot be found: the socket
// leaves its rooms as usual and the client starts afresh.
func (s *Server) takeOver(ctx context.Context, so *socket, ca connectAuth, sid string, info map[string]string) (rooms []string, why string) {
	old := info["connector"]
	ident := auth.Identity{UserID: info["userId"], UserName: info["userName"]}
	if old == s.id {
		h := s.unhold(sid)
		if h == nil && s.awaitSettled(sid) {
			// Its connection had just ended here: now it is held.
			h = s.unhold(sid)
		}
		if h == nil {
			prev := s.socket(sid)
			if prev == nil {
				return nil, "expired"
			}
			prev.supersede() // the old connection is half-open: replace it
		}
	}
	if _, err := streams.ParseID(ca.Offset); err != nil {
		if won, err := s.c.ClaimSocket(ctx, sid, old, s.id, streams.SocketLive); err == nil && won {
			rooms, _ := s.c.SocketRooms(ctx, sid)
			go s.close(&held{sid: sid, pid: ca.PID, session: info["sessionId"], rooms: rooms, ident: ident},
				schemas.ReasonRecoveryOver)
		}
		return nil, "bad_offset"
	}
	won, err := s.c.ClaimSocket(ctx, sid, old, s.id, streams.SocketLive)
	if err != nil || !won {
		return nil, "lost_race"
	}
	rooms, err = s.c.SocketRooms(ctx, sid)
	if err != nil {
		// We own the socket now but cannot read its rooms: close it so that
		// nothing is left behind, and start afresh.
		go s.close(&held{sid: sid, pid: ca.PID, session: info["sessionId"], ident: ident}, schemas.ReasonRecoveryOver)
		return nil, "error"
	}
	so.sid, so.pid, so.session = sid, ca.PID, info["sessionId"]
	so.rooms.reset(rooms)
	return rooms, ""
}

// startRecovering registers the socket here in recovering mode (events
// routed to it are buffered from here on) and, when it came from another
// connector, moves its rooms' deliveries here: a socket-move through the
// partition of each room, which the worker confirms with $moved. It
// returns the outbound position the buffered events start after.
func (s *Server) startRecovering(ctx context.Context, so *socket, sid, old string, rooms []string) (base string) {
	so.mu.Lock()
	so.recovering = true
	so.mu.Unlock()
	moving := old != s.id && len(rooms) > 0
	rec := &recovery{waiting: map[string]bool{}, done: make(chan struct{})}
	s.mu.Lock()
	// Read under the lock that the outbound reader holds (for reading)
	// from looking up an entry's sockets until lastSeen has moved past
	// it: every entry after base finds the socket registered.
	base = *s.lastSeen.Load()
	if prev := s.sockets[sid]; prev != nil && prev != so {
		prev.supersede()
	}
	s.putSocket(so)
	if moving {
		for _, r := range rooms {
			rec.waiting[r] = true
		}
		s.recoveries[sid] = rec
	}
	s.mu.Unlock()
	if !moving {
		return base
	}
	now := s.now()
	for _, r := range rooms {
		env := &streams.Envelope{Type: schemas.CmdMove, RoomID: r, SocketID: sid, ConnectorID: old, Target: s.id,
			UserID: so.ident.UserID, UserName: so.ident.UserName, SessionID: so.session, At: now}
		if _, err := s.c.Append(ctx, env); err != nil {
			s.log.Warn("recovery: queue move", "socket", sid, "room", r, "err", err)
		}
	}
	select {
	case <-rec.done:
	case <-time.After(moveTimeout):
		s.log.Warn("recovery: rooms did not confirm the move in time; catching up with what is there", "socket", sid)
	}
	s.mu.Lock()
	delete(s.recoveries, sid)
	s.mu.Unlock()
	return base
}

// resume reads what the socket missed on its old connector's stream,
// points its keys here, answers CONNECT with the same pid, then resends
// the missed events, then what was buffered meanwhile; live traffic
// follows. A socket that missed more than a recovery reads is not
// resumed (false): see abandonRecovery.
func (s *Server) resume(ctx context.Context, so *socket, ca connectAuth, old string, rooms []string, base string) bool {
	sid := so.sid
	offset, _ := streams.ParseID(ca.Offset) // takeOver checked it
	end := "+"
	if old == s.id {
		end = base
	}
	frames, last, err := s.catchUp(ctx, old, sid, offset, end, base, rooms)
	if errors.Is(err, errTooMuchMissed) {
		s.abandonRecovery(ctx, so, ca, old, rooms)
		return false
	}
	if err != nil {
		s.log.Warn("recovery: catch up", "socket", sid, "err", err)
	}
	if err := s.c.MoveSocket(ctx, sid, old, s.id, ca.PID, so.session, resumeTTL); err != nil {
		s.log.Warn("recovery: update socket keys", "socket", sid, "err", err)
	}

	so.connectTimer.Stop()
	so.connected = true
	so.enqueueRaw(protocol.ConnectFrame(sid, so.pid))
	so.watchToken()
	so.enqueueRaw(frames...)
	so.offset.Store(&last)
	so.mu.Lock()
	so.enqueueRaw(so.buffered...)
	if so.bufferedOffset != nil {
		so.offset.Store(so.bufferedOffset)
	}
	so.recovering, so.buffered, so.bufferedOffset = false, nil, nil
	so.mu.Unlock()
	s.log.Info("socket recovered", "socket", sid, "from", old, "rooms", len(rooms), "resent", len(frames))
	return true
}

// abandonRecovery gives up a recovery whose socket missed more than
// RECOVERY_MAX_ENTRIES: the socket, taken over already, is closed as when
// its recovery window passes (its rooms hear user-left,
// recovery_expired), and the connection goes on as a fresh session.
func (s *Server) abandonRecovery(ctx context.Context, so *socket, ca connectAuth, old string, rooms []string) {
	sid := so.sid
	s.log.Info("recovery: the socket missed more than a recovery reads; a fresh session instead", "socket", sid, "from", old,
		"max", s.cfg.RecoveryMaxEntries)
	s.mu.Lock()
	s.dropSocket(so)
	s.mu.Unlock()
	so.mu.Lock()
	so.recovering, so.buffered, so.bufferedOffset = false, nil, nil
	so.mu.Unlock()
	h := &held{sid: sid, pid: ca.PID, session: so.session, rooms: rooms, ident: so.ident}
	// Out of its user's sockets now, so that the fresh session is not
	// refused for the socket it replaces (closing it takes a while).
	if err := s.c.RemoveUserSocket(ctx, so.ident.UserID, sid); err != nil {
		s.log.Warn("recovery: give back a user's socket place", "socket", sid, "err", err)
	}
	if old != s.id {
		if err := s.c.UnlistSocket(ctx, old, sid); err != nil {
			s.log.Warn("recovery: unlist socket", "socket", sid, "err", err)
		}
	}
	go s.close(h, schemas.ReasonRecoveryOver)
	so.sid, so.pid, so.session = "", "", ""
	so.rooms.reset(nil)
	so.offset.Store(s.lastSeen.Load())
}

// supersede ends a connection that a recovery replaced, without touching
// the socket's rooms.
func (so *socket) supersede() {
	so.superseded.Store(true)
	so.end(causeTransport, 4000, "replaced by a recovered connection")
}
