package streams

import (
	"context"
	_ "embed"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	//go:embed scripts/socket_claim.lua
	socketClaimSrc string
	socketClaim    = redis.NewScript(socketClaimSrc)
	//go:embed scripts/socket_forget_room.lua
	socketForgetRoomSrc string
	socketForgetRoom    = redis.NewScript(socketForgetRoomSrc)
)

// Socket states kept in socket:{socketId}.
const (
	SocketLive   = "live"   // connected
	SocketHeld   = "held"   // dropped, in its rooms for the recovery window
	SocketClosed = "closed" // leaving its rooms
)

// ClaimSocket sets socket sid's connector to `to` and its state to state,
// if it is still on connector from. Exactly one of competing claims wins.
func (c *Client) ClaimSocket(ctx context.Context, sid, from, to, state string) (bool, error) {
	n, err := socketClaim.Run(ctx, c.rdb, []string{c.Keys.Socket(sid)}, from, to, state).Int64()
	return n == 1, err
}

// The keys of a socket's lifetime have one owner: the connector opens
// (OpenSocket), holds (HoldSocket) and closes (DeleteSocket) its sockets,
// and a worker's reaper closes those of a connector that died, with the
// same functions.

// NewSocket is what OpenSocket records about a socket that connected.
type NewSocket struct {
	ID, Session, PID, Connector string
	UserID, UserName            string
	IssuedAtMs                  int64 // the token's iat ("iat" of socket:{id}, 0: none)
	At                          time.Time
	// TTL is the lifetime of the session, the socket record and the
	// user's socket set; ResumeTTL the resume token's.
	TTL, ResumeTTL time.Duration
}

// OpenSocket records a new socket and its session: session:{id},
// socket:{id} (state live), its entry in its user's and its connector's
// socket sets, and its resume token.
func (c *Client) OpenSocket(ctx context.Context, s NewSocket) error {
	k := c.Keys
	now := ISOTime(s.At)
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k.Session(s.Session), "userId", s.UserID, "userName", s.UserName,
			"connectorId", s.Connector, "socketId", s.ID, "createdAt", now)
		p.Expire(ctx, k.Session(s.Session), s.TTL)
		p.HSet(ctx, k.Socket(s.ID), "id", s.ID, "userId", s.UserID, "userName", s.UserName,
			"sessionId", s.Session, "connector", s.Connector, "pid", s.PID, "state", SocketLive, "connectedAt", now,
			"iat", s.IssuedAtMs)
		p.Expire(ctx, k.Socket(s.ID), s.TTL)
		p.SAdd(ctx, k.UserSockets(s.UserID), s.ID)
		p.Expire(ctx, k.UserSockets(s.UserID), s.TTL)
		p.SAdd(ctx, k.ConnectorSockets(s.Connector), s.ID)
		p.Set(ctx, k.Resume(s.PID), s.ID, s.ResumeTTL)
		return nil
	})
	return err
}

// HoldSocket notes when a socket (claimed held, see ClaimSocket) dropped
// and keeps its resume token for the recovery window.
func (c *Client) HoldSocket(ctx context.Context, sid, pid string, at time.Time, window time.Duration) error {
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, c.Keys.Socket(sid), "droppedAt", ISOTime(at))
		p.Expire(ctx, c.Keys.Resume(pid), window)
		return nil
	})
	return err
}

// RefreshResume extends the resume tokens of connected sockets to ttl,
// a thousand per round trip.
func (c *Client) RefreshResume(ctx context.Context, pids []string, ttl time.Duration) error {
	for i := 0; i < len(pids); i += 1000 {
		batch := pids[i:min(i+1000, len(pids))]
		_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, pid := range batch {
				p.Expire(ctx, c.Keys.Resume(pid), ttl)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// UnlistSocket removes a socket from its connector's socket set (it moved
// to another connector, or is gone).
func (c *Client) UnlistSocket(ctx context.Context, connector, sid string) error {
	return c.rdb.SRem(ctx, c.Keys.ConnectorSockets(connector), sid).Err()
}

// ClosedSocket is a socket whose keys DeleteSocket deletes.
type ClosedSocket struct {
	ID        string
	UserID    string // "": not known (its record was gone)
	PID       string // its resume token, "": none
	Connector string // whose socket set it leaves
	// Session, when set, ends with the socket: deleted when SessionDone (a
	// clean close: nothing will look it up again), else marked endedAt At
	// (it stays for its 24 h).
	Session     string
	SessionDone bool
	At          time.Time
}

// DeleteSocket deletes a closed socket's keys: socket:{id} and its room
// set, its resume token, its entries in its user's and its connector's
// socket sets, and ends its session if given. Its rooms must have been
// sent its disconnect first.
func (c *Client) DeleteSocket(ctx context.Context, s ClosedSocket) error {
	k := c.Keys
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, k.Socket(s.ID), k.SocketRooms(s.ID))
		if s.PID != "" {
			p.Del(ctx, k.Resume(s.PID))
		}
		if s.UserID != "" {
			p.SRem(ctx, k.UserSockets(s.UserID), s.ID)
		}
		p.SRem(ctx, k.ConnectorSockets(s.Connector), s.ID)
		switch {
		case s.Session == "":
		case s.SessionDone:
			p.Del(ctx, k.Session(s.Session))
		default:
			p.HSet(ctx, k.Session(s.Session), "endedAt", ISOTime(s.At))
		}
		return nil
	})
	return err
}

// AddSocketRoom records that socket sid is in room (socket:{id}:rooms),
// before its join is queued, so that whoever cleans up after the socket
// knows to look there.
func (c *Client) AddSocketRoom(ctx context.Context, sid, room string) error {
	return c.rdb.SAdd(ctx, c.Keys.SocketRooms(sid), room).Err()
}

// RemoveSocketRoom forgets that socket sid is in room.
func (c *Client) RemoveSocketRoom(ctx context.Context, sid, room string) error {
	return c.rdb.SRem(ctx, c.Keys.SocketRooms(sid), room).Err()
}

// ForgetSocketRoom forgets that socket sid is in room, as RemoveSocketRoom
// does, only while connector owns the socket (its join was refused, or
// the room removed it: a recovery elsewhere may own it by now).
func (c *Client) ForgetSocketRoom(ctx context.Context, sid, room, connector string) error {
	return socketForgetRoom.Run(ctx, c.rdb, []string{c.Keys.Socket(sid), c.Keys.SocketRooms(sid)}, room, connector).Err()
}

// SocketRooms returns the rooms socket sid is in.
func (c *Client) SocketRooms(ctx context.Context, sid string) ([]string, error) {
	return c.rdb.SMembers(ctx, c.Keys.SocketRooms(sid)).Result()
}

// ResumableSocket returns the socket a recovery id (pid) names and its
// record (socket:{id}); redis.Nil when the id is unknown or expired.
func (c *Client) ResumableSocket(ctx context.Context, pid string) (sid string, info map[string]string, err error) {
	sid, err = c.rdb.Get(ctx, c.Keys.Resume(pid)).Result()
	if err != nil {
		return "", nil, err
	}
	info, err = c.rdb.HGetAll(ctx, c.Keys.Socket(sid)).Result()
	return sid, info, err
}

// MoveSocket points a recovered socket's keys at connector to (from the
// connector from, when another): its connector's socket set, its
// recovery id (kept for ttl) and its session.
func (c *Client) MoveSocket(ctx context.Context, sid, from, to, pid, session string, ttl time.Duration) error {
	k := c.Keys
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, k.ConnectorSockets(to), sid)
		if from != to {
			p.SRem(ctx, k.ConnectorSockets(from), sid)
		}
		p.Set(ctx, k.Resume(pid), sid, ttl)
		p.HSet(ctx, k.Session(session), "connectorId", to)
		return nil
	})
	return err
}
