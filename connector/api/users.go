package api

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// SocketInfo is one socket of a user.
type SocketInfo struct {
	SocketID    string `json:"socketId"`
	Connector   string `json:"connector"`
	ConnectedAt string `json:"connectedAt,omitempty"`
	// State is "live" (connected) or "held" (dropped, recoverable until
	// its recovery window ends).
	State     string `json:"state"`
	DroppedAt string `json:"droppedAt,omitempty"`
}

// UserInfo is what GET /users/{userId} answers.
type UserInfo struct {
	UserID  string       `json:"userId"`
	Sockets []SocketInfo `json:"sockets"`
	Rooms   []string     `json:"rooms"`
	// TokensRevokedBefore: tokens issued up to this time are refused.
	TokensRevokedBefore string `json:"tokensRevokedBefore,omitempty"`
}

// User reads a user's sockets (connector, connected since) and rooms.
func (s *Service) User(ctx context.Context, user string) (*UserInfo, error) {
	if err := checkID("userId", user); err != nil {
		return nil, err
	}
	info, _, err := s.user(ctx, user)
	if err != nil {
		return nil, err
	}
	if len(info.Sockets) == 0 && len(info.Rooms) == 0 && info.TokensRevokedBefore == "" {
		return nil, notFound("user %s has no sockets and no rooms", user)
	}
	return info, nil
}

func (s *Service) user(ctx context.Context, user string) (*UserInfo, []string, error) {
	k := s.c.Keys
	rdb := s.c.Redis()
	var sids, rooms *redis.StringSliceCmd
	var revoked *redis.StringCmd
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		sids = p.SMembers(ctx, k.UserSockets(user))
		rooms = p.SMembers(ctx, k.UserRooms(user))
		revoked = p.Get(ctx, k.UserRevoked(user))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, err
	}
	info := &UserInfo{UserID: user, Sockets: []SocketInfo{}, Rooms: rooms.Val()}
	sort.Strings(info.Rooms)
	if ms, err := strconv.ParseInt(revoked.Val(), 10, 64); err == nil {
		info.TokensRevokedBefore = streams.ISOTime(time.UnixMilli(ms))
	}
	ids := sids.Val()
	sort.Strings(ids)
	cmds := make([]*redis.SliceCmd, len(ids))
	if len(ids) > 0 {
		_, err = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, sid := range ids {
				cmds[i] = p.HMGet(ctx, k.Socket(sid), "connector", "connectedAt", "state", "droppedAt")
			}
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
	}
	for i, sid := range ids {
		v := cmds[i].Val()
		str := func(j int) string { x, _ := v[j].(string); return x }
		conn, state := str(0), str(2)
		if conn == "" || state == streams.SocketClosed {
			continue // gone: its keys are being deleted
		}
		info.Sockets = append(info.Sockets, SocketInfo{SocketID: sid, Connector: conn, ConnectedAt: str(1), State: state, DroppedAt: str(3)})
	}
	return info, ids, nil
}

// DisconnectRequest is the body of POST /users/{userId}/disconnect.
type DisconnectRequest struct {
	Reason       string `json:"reason"`
	RevokeTokens bool   `json:"revokeTokens"`
}

// Disconnected is the answer to a disconnect.
type Disconnected struct {
	UserID string `json:"userId"`
	// Sockets were told to close, on Connectors.
	Sockets    []string `json:"sockets"`
	Connectors []string `json:"connectors"`
	// TokensRevokedBefore is set with revokeTokens.
	TokensRevokedBefore string `json:"tokensRevokedBefore,omitempty"`
}

// Disconnect closes every socket of user on every connector (each leaves
// its rooms with user-left, reason "server_disconnect"); with
// RevokeTokens, the user's tokens issued until now are refused at connect,
// authenticate and recovery. Each connector hears it through its own
// outbound stream.
func (s *Service) Disconnect(ctx context.Context, user string, req DisconnectRequest) (*Disconnected, error) {
	if err := checkID("userId", user); err != nil {
		return nil, err
	}
	if !schemas.ValidText(req.Reason, schemas.MaxNameLen) {
		return nil, badField("reason", "must be text of at most %d bytes without control characters", schemas.MaxNameLen)
	}
	now := s.now()
	out := &Disconnected{UserID: user, Sockets: []string{}, Connectors: []string{}}
	if req.RevokeTokens {
		// First, so that a reconnection racing this request is refused.
		if err := s.c.Revoke(ctx, user, now, s.revokeTTL); err != nil {
			return nil, err
		}
		out.TokensRevokedBefore = streams.ISOTime(now)
	}
	info, _, err := s.user(ctx, user)
	if err != nil {
		return nil, err
	}
	if len(info.Sockets) == 0 && len(info.Rooms) == 0 && !req.RevokeTokens {
		return nil, notFound("user %s has no sockets and no rooms", user)
	}
	byConn := map[string][]string{}
	for _, so := range info.Sockets {
		byConn[so.Connector] = append(byConn[so.Connector], so.SocketID)
	}
	// A connector whose heartbeat is gone reads nothing more (and its
	// stream is being deleted): the workers remove its sockets from their
	// rooms (connector_lost), and a recovery of one meets the revocation.
	conns := make([]string, 0, len(byConn))
	alive := make([]*redis.IntCmd, 0, len(byConn))
	_, err = s.c.Redis().Pipelined(ctx, func(p redis.Pipeliner) error {
		for conn := range byConn {
			conns = append(conns, conn)
			alive = append(alive, p.Exists(ctx, s.c.Keys.Connector(conn)))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, conn := range conns {
		if alive[i].Val() == 0 {
			delete(byConn, conn)
		}
	}
	body, _ := json.Marshal(map[string]string{"reason": req.Reason})
	_, err = s.c.Redis().Pipelined(ctx, func(p redis.Pipeliner) error {
		for conn, sids := range byConn {
			out.Sockets = append(out.Sockets, sids...)
			o := &streams.Outbound{Messages: []streams.Message{{Event: streams.DisconnectEvent, Body: body, To: sids}}}
			p.XAdd(ctx, s.c.OutboundArgs(conn, o, now))
			out.Connectors = append(out.Connectors, conn)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(out.Connectors)
	sort.Strings(out.Sockets)
	return out, nil
}
