package connector

import (
	"context"
	"sync"
	"time"

	"github.com/roomstream/roomstream/connector/protocol"
	"github.com/roomstream/roomstream/schemas"
)

// A socket's rooms: the rooms it asked to join and has not left. They
// bound MAX_ROOMS, and whoever cleans up after the socket leaves each of
// them. A join counts from when it is appended (its outcome is not known
// yet: counting it keeps a burst of joins within the limit); the workers'
// answer comes through the outbound stream in the room's order: $join
// puts the socket in, $refused (before the refusal itself) drops a join
// that did not succeed, and $leave drops a room the socket was removed
// from (an operator's DELETE /rooms/{id}/members/{user}).

// roomState is what the connector knows of a socket in one room.
type roomState uint8

const (
	roomJoining roomState = 1 << iota // a join appended, its outcome not known yet
	roomIn                            // the workers put the socket in ($join)
)

// socketRooms is a socket's rooms. The read loop adds and leaves rooms;
// the outbound reader learns the outcomes.
type socketRooms struct {
	mu sync.Mutex
	m  map[string]roomState
	// wmu orders the writes of the socket's room set in Redis
	// (socket:{id}:rooms): the read loop records a room before its join
	// is appended and forgets it after a leave; a refusal or a removal
	// forgets it in the background. It is held across the Redis call, so
	// that a background removal never lands after a new join's record.
	wmu sync.Mutex
}

func (r *socketRooms) has(room string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.m[room]
	return ok
}

// count is how many rooms the socket is in or joining.
func (r *socketRooms) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m)
}

func (r *socketRooms) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.m))
	for room := range r.m {
		out = append(out, room)
	}
	return out
}

// reset makes rooms the socket's rooms, all of them joined (a recovered
// socket).
func (r *socketRooms) reset(rooms []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m = make(map[string]roomState, len(rooms))
	for _, room := range rooms {
		r.m[room] = roomIn
	}
}

// joining notes a join about to be appended.
func (r *socketRooms) joining(room string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]roomState{}
	}
	r.m[room] |= roomJoining
}

// left drops a room the socket asked to leave.
func (r *socketRooms) left(room string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, room)
}

// joined notes that the socket is in room ($join); unknown is true when
// the connector did not count the room (a join it had dropped after a
// refusal of an earlier one, or whose append it thought had failed).
func (r *socketRooms) joined(room string) (unknown bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]roomState{}
	}
	_, known := r.m[room]
	r.m[room] = roomIn
	return !known
}

// drop clears flag (roomJoining: the join was refused or not appended;
// roomIn: the socket was removed) and tells whether the room stopped
// counting.
func (r *socketRooms) drop(room string, flag roomState) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.m[room]
	if !ok {
		return false
	}
	st &^= flag
	if st != 0 {
		r.m[room] = st
		return false
	}
	delete(r.m, room)
	return true
}

// admitJoin records room among the socket's rooms before its join is
// appended, unless a limit refuses it (answered here: false). A room the
// socket is in or joining already is the workers' to answer.
func (so *socket) admitJoin(ctx context.Context, p protocol.Packet, room string) bool {
	s := so.srv
	if so.rooms.has(room) {
		return true
	}
	so.rooms.wmu.Lock()
	defer so.rooms.wmu.Unlock()
	if so.rooms.count() >= s.cfg.MaxRooms {
		so.refuse(p, schemas.EventJoinRoom, room, schemas.Errorf(schemas.CodeTooManyRooms, "a socket may be in %d rooms at most", s.cfg.MaxRooms))
		return false
	}
	if full, err := s.userRoomsFull(ctx, so, room); err != nil {
		so.unavailable(p, schemas.EventJoinRoom, room, err)
		return false
	} else if full {
		s.m.limited.WithLabelValues(string(limitRoomsUser)).Inc()
		so.refuse(p, schemas.EventJoinRoom, room, schemas.Errorf(schemas.CodeTooManyRooms, "a user may be in %d rooms at most", s.cfg.MaxRoomsPerUser))
		return false
	}
	// Recorded before the join is queued, so that whoever cleans up
	// after this socket knows to look in this room.
	if err := s.c.AddSocketRoom(ctx, so.sid, room); err != nil {
		so.unavailable(p, schemas.EventJoinRoom, room, err)
		return false
	}
	so.rooms.joining(room)
	return true
}

// leftRoom forgets a room whose leave-room was appended.
func (so *socket) leftRoom(ctx context.Context, room string) {
	s := so.srv
	so.rooms.wmu.Lock()
	defer so.rooms.wmu.Unlock()
	so.rooms.left(room)
	if err := s.c.RemoveSocketRoom(ctx, so.sid, room); err != nil {
		s.log.Warn("forget room of socket", "socket", so.sid, "room", room, "err", err)
	}
}

// joinNotAppended stops counting a join that was admitted but could not
// be appended. Should it have been appended after all, its $join counts
// the room again.
func (so *socket) joinNotAppended(room string) {
	if so.rooms.drop(room, roomJoining) {
		go so.forgetRoom(room)
	}
}

// roomJoined: the workers put socket sid in room ($join).
func (s *Server) roomJoined(sid, room string) {
	if so := s.socket(sid); so != nil && so.rooms.joined(room) {
		go so.rememberRoom(room)
	}
}

// joinRefused: the workers refused socket sid's join of room ($refused).
func (s *Server) joinRefused(sid, room string) {
	if so := s.socket(sid); so != nil && so.rooms.drop(room, roomJoining) {
		go so.forgetRoom(room)
	}
}

// roomLeft: socket sid is no longer in room on this connector ($leave):
// it left (already forgotten), or was removed.
func (s *Server) roomLeft(sid, room string) {
	if so := s.socket(sid); so != nil && so.rooms.drop(room, roomIn) {
		go so.forgetRoom(room)
	}
}

// forgetRoom removes room from the socket's room set in Redis, unless the
// socket joined it again meanwhile.
func (so *socket) forgetRoom(room string) {
	s := so.srv
	so.rooms.wmu.Lock()
	defer so.rooms.wmu.Unlock()
	if so.rooms.has(room) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.c.ForgetSocketRoom(ctx, so.sid, room, s.id); err != nil {
		s.log.Warn("forget room of socket", "socket", so.sid, "room", room, "err", err)
	}
}

// rememberRoom records room in the socket's room set in Redis again (the
// socket is in a room the connector had stopped counting), unless it left
// meanwhile.
func (so *socket) rememberRoom(room string) {
	s := so.srv
	so.rooms.wmu.Lock()
	defer so.rooms.wmu.Unlock()
	if !so.rooms.has(room) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.c.AddSocketRoom(ctx, so.sid, room); err != nil {
		s.log.Warn("record room of socket", "socket", so.sid, "room", room, "err", err)
	}
}
