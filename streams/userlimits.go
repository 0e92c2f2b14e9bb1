package streams

import (
	"context"
	_ "embed"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// A user's bounds across connectors: sockets (MAX_CONNS_PER_USER), rooms
// (MAX_ROOMS_PER_USER) and rooms created (ROOM_CREATE_RATE). Each is
// checked and taken in one script on the user's keys (one hash slot), so
// that simultaneous connects or joins of one user cannot pass a bound
// together.

var (
	//go:embed scripts/user_socket_add.lua
	userSocketAddSrc string
	userSocketAdd    = redis.NewScript(userSocketAddSrc)
	//go:embed scripts/user_room_admit.lua
	userRoomAdmitSrc string
	userRoomAdmit    = redis.NewScript(userRoomAdmitSrc)
)

// AddUserSocket adds socket sid to user's socket set (kept ttl), unless
// the user has limit sockets already (0: no limit); n is how many the
// user had. OpenSocket then records the rest of the socket.
func (c *Client) AddUserSocket(ctx context.Context, user, sid string, limit int, ttl time.Duration) (added bool, n int64, err error) {
	res, err := userSocketAdd.Run(ctx, c.rdb, []string{c.Keys.UserSockets(user)}, sid, limit, ttl.Milliseconds()).Int64Slice()
	if err != nil {
		return false, 0, err
	}
	if len(res) != 2 {
		return false, 0, errors.New("streams: user_socket_add: unexpected reply")
	}
	return res[0] == 1, res[1], nil
}

// RemoveUserSocket takes socket sid out of user's socket set again (it
// was added, but its socket could not be opened).
func (c *Client) RemoveUserSocket(ctx context.Context, user, sid string) error {
	return c.rdb.SRem(ctx, c.Keys.UserSockets(user), sid).Err()
}

// RoomAdmission is a join to admit against its user's bounds.
type RoomAdmission struct {
	User, Room string
	Now        time.Time
	// Hold is how long an admitted join keeps its place among the
	// user's rooms (until the workers apply it, it is not in
	// user:{id}:rooms yet).
	Hold time.Duration
	// MaxRooms is how many rooms the user may be in (0: no limit).
	MaxRooms int
	// Creates says that the room does not exist: the join would create
	// it. MaxCreated rooms may be created per Window (0: no limit).
	Creates    bool
	MaxCreated int
	Window     time.Duration
}

// Refusals of AdmitUserRoom: the schemas codes of the bounds.
const (
	RefusedTooManyRooms    = "too_many_rooms"
	RefusedTooManyNewRooms = "too_many_new_rooms"
)

// AdmitUserRoom admits a join against its user's bounds: "" when
// admitted (the join holds its place), else the refusal
// (RefusedTooManyRooms or RefusedTooManyNewRooms).
func (c *Client) AdmitUserRoom(ctx context.Context, a RoomAdmission) (refusal string, err error) {
	k := c.Keys
	creates := "0"
	if a.Creates {
		creates = "1"
	}
	res, err := userRoomAdmit.Run(ctx, c.rdb, []string{k.UserRooms(a.User), k.UserJoining(a.User), k.UserCreated(a.User)},
		a.Room, a.Now.UnixMilli(), a.Hold.Milliseconds(), a.MaxRooms, creates, a.MaxCreated, a.Window.Milliseconds()).StringSlice()
	if err != nil {
		return "", err
	}
	if len(res) == 0 {
		return "", errors.New("streams: user_room_admit: empty reply")
	}
	if res[0] == "ok" {
		return "", nil
	}
	return res[0], nil
}

// ReleaseUserRoom gives up the place an admitted join of room held among
// user's rooms (the join was refused, or not appended).
func (c *Client) ReleaseUserRoom(ctx context.Context, user, room string) error {
	return c.rdb.ZRem(ctx, c.Keys.UserJoining(user), room).Err()
}

// RoomExists tells whether room has state (room:{id}): a join of a room
// without it creates the room.
func (c *Client) RoomExists(ctx context.Context, room string) (bool, error) {
	n, err := c.rdb.Exists(ctx, c.Keys.Room(room)).Result()
	return n == 1, err
}
