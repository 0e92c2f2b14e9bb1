package connector

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/roomstream/roomstream/connector/protocol"
	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
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
	mu   sync.Mutex
	m    map[string]roomState
	user string
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

// joining notes a join of user's about to be appended.
func (r *socketRooms) joining(room, user string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]roomState{}
	}
	r.m[room] |= roomJoining
	r.user = user
}

// userID is the user whose joins the socket made ("" before any): what
// the background removals give back places of (the socket's identity
// belongs to its read loop).
func (r *socketRooms) userID() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.user
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
// appended, unless a limit or room access refuses it (answered here:
// false). A room the socket is in or joining already is the workers' to
// answer: access to it was decided when the socket joined, and is
// decided again when its token changes (recheckRooms).
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
	if e := s.mayJoin(ctx, so.ident, room, true); e != nil {
		so.refuse(p, schemas.EventJoinRoom, room, e)
		return false
	}
	held, refusal, err := s.admitUserRoom(ctx, so.ident.UserID, room)
	if err != nil {
		so.unavailable(p, schemas.EventJoinRoom, room, err)
		return false
	}
	if refusal != nil {
		so.refuse(p, schemas.EventJoinRoom, room, refusal)
		return false
	}
	// Recorded before the join is queued, so that whoever cleans up
	// after this socket knows to look in this room.
	if err := s.c.AddSocketRoom(ctx, so.sid, room); err != nil {
		if held {
			s.releaseUserRoom(so.ident.UserID, room)
		}
		so.unavailable(p, schemas.EventJoinRoom, room, err)
		return false
	}
	so.rooms.joining(room, so.ident.UserID)
	return true
}

// limitRoomCreate names ROOM_CREATE_RATE in the limited metric.
const limitRoomCreate limitCode = "room_create_rate"

// joinHold is how long a join admitted against its user's bounds holds
// its place among the user's rooms: far longer than the workers take to
// apply it (then the room is in user:{id}:rooms), short enough that a
// join lost on the way does not hold it for long.
const joinHold = time.Minute

// admitUserRoom checks a join of room by user against the user's bounds
// across connectors: MAX_ROOMS_PER_USER and, when the join would create
// the room, ROOM_CREATE_RATE. The check and the join's place among the
// user's rooms are one step in Redis, so simultaneous joins of one user
// count each other. held says that the join holds a place (given back
// should it not be appended); refusal is for the client.
func (s *Server) admitUserRoom(ctx context.Context, user, room string) (held bool, refusal *schemas.Error, err error) {
	a := streams.RoomAdmission{User: user, Room: room, Now: s.now(), Hold: joinHold,
		MaxRooms: s.cfg.MaxRoomsPerUser, MaxCreated: s.cfg.RoomCreateRate, Window: time.Minute}
	if a.MaxCreated > 0 {
		exists, err := s.c.RoomExists(ctx, room)
		if err != nil {
			return false, nil, err
		}
		a.Creates = !exists
	}
	if a.MaxRooms <= 0 && !a.Creates {
		return false, nil, nil
	}
	why, err := s.c.AdmitUserRoom(ctx, a)
	switch {
	case err != nil:
		return false, nil, err
	case why == streams.RefusedTooManyRooms:
		s.m.limited.WithLabelValues(string(limitRoomsUser)).Inc()
		return false, schemas.Errorf(schemas.CodeTooManyRooms, "a user may be in %d rooms at most", s.cfg.MaxRoomsPerUser), nil
	case why == streams.RefusedTooManyNewRooms:
		s.m.limited.WithLabelValues(string(limitRoomCreate)).Inc()
		return false, schemas.Errorf(schemas.CodeTooManyNewRooms, "a user may create %d rooms per minute; join an existing room, or wait", s.cfg.RoomCreateRate), nil
	case why != "":
		return false, nil, fmt.Errorf("admit join of room %s: unexpected refusal %q", room, why)
	}
	return a.MaxRooms > 0, nil, nil
}

// releaseUserRoom gives up the place a join held among its user's rooms
// (it was refused, or not appended).
func (s *Server) releaseUserRoom(user, room string) {
	if s.cfg.MaxRoomsPerUser <= 0 || user == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.c.ReleaseUserRoom(ctx, user, room); err != nil {
		s.log.Warn("give back a user's room place", "user", user, "room", room, "err", err)
	}
}

// leftRoom forgets a room whose leave-room was appended, and gives back
// the place its join may still hold among its user's rooms.
func (so *socket) leftRoom(ctx context.Context, room string) {
	s := so.srv
	so.rooms.wmu.Lock()
	defer so.rooms.wmu.Unlock()
	so.rooms.left(room)
	if err := s.c.RemoveSocketRoom(ctx, so.sid, room); err != nil {
		s.log.Warn("forget room of socket", "socket", so.sid, "room", room, "err", err)
	}
	s.releaseUserRoom(so.ident.UserID, room)
}

// joinNotAppended stops counting a join that was admitted but could not
// be appended. Should it have been appended after all, its $join counts
// the room again.
func (so *socket) joinNotAppended(room string) {
	if so.rooms.drop(room, roomJoining) {
		go so.forgetRoom(room)
	}
}

// roomJoined, joinRefused and roomLeft are called by the outbound reader,
// which holds s.mu for reading.

// roomJoined: the workers put socket sid in room ($join).
func (s *Server) roomJoined(sid, room string) {
	if so := s.sockets[sid]; so != nil && so.rooms.joined(room) {
		go so.rememberRoom(room)
	}
}

// joinRefused: the workers refused socket sid's join of room ($refused).
func (s *Server) joinRefused(sid, room string) {
	if so := s.sockets[sid]; so != nil && so.rooms.drop(room, roomJoining) {
		go so.forgetRoom(room)
	}
}

// roomLeft: socket sid is no longer in room on this connector ($leave):
// it left (already forgotten), or was removed.
func (s *Server) roomLeft(sid, room string) {
	if so := s.sockets[sid]; so != nil && so.rooms.drop(room, roomIn) {
		go so.forgetRoom(room)
	}
}

// forgetRoom removes room from the socket's room set in Redis, and gives
// back the place its join may hold among its user's rooms, unless the
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
	s.releaseUserRoom(so.rooms.userID(), room)
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
