package workers

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// join: the socket joins; the room hears user-joined when the user was not
// there yet; the joiner gets the room's snapshot (ack, or room-state),
// with its lists capped at the snapshot limit. A refused join tells its
// connector ($refused) before the refusal. A socket that joins a room
// it is in already (on the same connector) gets {ok, alreadyJoined} when
// it asked for an ack and nothing otherwise: it has had the snapshot and
// every event since, and repeating the room in the outbound stream on
// every repeated join would let one client fill the stream.
func (a *Applier) join(env *streams.Envelope) *call {
	return &call{script: a.scripts.join, args: []any{env.SocketID, env.ConnectorID, env.UserID, env.UserName, a.limits.RoomMaxMembers},
		done: func(r reply, e *effects) error {
			j := r.join()
			if r.status() == "ok" && j.again {
				e.outcome.Status = "noop"
				if env.HasAck {
					e.reply(env, schemas.Ack{OK: true, AlreadyJoined: true})
				}
				return nil
			}
			if r.status() != "ok" || len(r) < joinFields {
				// Before the refusal: by the time the client reads it, its
				// connector no longer counts the room among the socket's.
				e.member(env.ConnectorID, streams.JoinRefusedEvent, env.SocketID, env.RoomID)
			}
			if !e.applied(env, r, joinFields) {
				return nil
			}
			if j.from != "" {
				e.member(j.from, streams.LeaveEvent, env.SocketID, env.RoomID)
			}
			if j.added {
				// Before the snapshot and user-joined: from here on the
				// connector delivers the room's events to the socket.
				e.member(env.ConnectorID, streams.JoinEvent, env.SocketID, env.RoomID)
			}
			snap := streams.DecodeRoomSnapshot(env.RoomID, streams.RoomHashes{Room: streams.FlatHash(j.room),
				Sockets: streams.FlatHash(j.sockets), Uploads: streams.FlatHash(j.uploads), Files: streams.FlatHash(j.files)})
			streams.LimitSnapshot(snap, a.limits.SnapshotLimit)
			if env.HasAck {
				e.reply(env, schemas.Ack{OK: true, Room: snap})
			} else {
				e.send(env.ConnectorID, streams.Message{Event: schemas.EventRoomState, Body: mustJSON(snap), To: []string{env.SocketID}})
			}
			if j.first {
				e.broadcast(j.conns, env.RoomID, schemas.EventUserJoined, mustJSON(schemas.UserJoinedPayload{
					RoomID: env.RoomID, UserID: env.UserID, UserName: env.UserName, JoinedAt: streams.ISOTime(env.At),
				}))
			}
			userRooms := a.keys.UserRooms(env.UserID)
			e.side = append(e.side, func(ctx context.Context, p redis.Pipeliner) []redis.Cmder {
				return []redis.Cmder{p.SAdd(ctx, userRooms, env.RoomID), p.Expire(ctx, userRooms, socketTTL)}
			})
			return nil
		}}
}

// leave handles leave-room (asked by the client, or by its connector with
// a reason: access_revoked) and socket-disconnect (its socket went away):
// user-left goes to the room when the user has no socket left in it, and
// a lock the user held starts its grace period.
func (a *Applier) leave(env *streams.Envelope) *call {
	mode, conn, reason := "leave", "", schemas.ReasonLeft
	if env.Type == schemas.CmdDisconnect {
		mode, conn, reason = "disconnect", env.ConnectorID, env.Reason
		if reason == "" {
			reason = schemas.ReasonDisconnected
		}
	} else if env.Reason != "" {
		// The connector made the socket leave (its new token no longer
		// allows the room).
		reason = env.Reason
	}
	return &call{script: a.scripts.leave, args: []any{env.SocketID, conn, mode},
		done: func(r reply, e *effects) error {
			if r.status() == "noop" {
				e.outcome.Status = "noop"
				return nil
			}
			if !e.applied(env, r, leaveFields) {
				return nil
			}
			l := r.leave()
			userLeft, uid, uname, conns, orphan, from := l.userLeft, l.userID, l.userName, l.conns, l.lockOrphaned, l.conn
			if mode == "leave" {
				e.replyOK(env)
			} else {
				// A socket that went away hears nothing more.
				e.member(from, streams.LeaveEvent, env.SocketID, env.RoomID)
			}
			if userLeft {
				if mode == "leave" && !hasConn(conns, from) {
					// The leaving socket sees its own user-left, even when
					// it was its connector's last one in the room.
					conns = joinConns(conns, from)
				}
				e.broadcast(conns, env.RoomID, schemas.EventUserLeft, mustJSON(schemas.UserLeftPayload{
					RoomID: env.RoomID, UserID: uid, UserName: uname, LeftAt: streams.ISOTime(env.At), Reason: reason,
				}))
			}
			if mode == "leave" {
				e.member(from, streams.LeaveEvent, env.SocketID, env.RoomID)
			}
			if !userLeft {
				return nil
			}
			a.userLeft(e, env, uid, orphan)
			return nil
		}}
}

// move re-points a recovered socket at its new connector and confirms it
// there, whether or not the socket is still in the room: the old
// connector drops it from the room's members, the new one adds it.
func (a *Applier) move(env *streams.Envelope) *call {
	return &call{script: a.scripts.move, args: []any{env.SocketID, env.Target},
		done: func(r reply, e *effects) error {
			e.outcome.Status = r.status()
			if r.status() == "ok" && len(r) > 1 {
				if from := r.movedFrom(); from != env.Target {
					e.member(from, streams.LeaveEvent, env.SocketID, env.RoomID)
				}
				e.member(env.Target, streams.JoinEvent, env.SocketID, env.RoomID)
			}
			body := mustJSON(map[string]string{"roomId": env.RoomID, "status": r.status()})
			e.send(env.Target, streams.Message{Event: streams.MovedEvent, Body: body, To: []string{env.SocketID}})
			return nil
		}}
}

// userLeft queues what follows a user's leaving the room of env: the room
// leaves the user's room list and, when the user held its lock (orphan),
// the lock is released after the grace unless they come back.
func (a *Applier) userLeft(e *effects, env *streams.Envelope, uid string, orphan bool) {
	userRooms := a.keys.UserRooms(uid)
	orphans := a.keys.OrphanLocks()
	due := float64(env.At.Add(a.lockGrace).UnixMilli())
	room := env.RoomID
	e.side = append(e.side, func(ctx context.Context, p redis.Pipeliner) []redis.Cmder {
		cmds := []redis.Cmder{p.SRem(ctx, userRooms, room)}
		if orphan {
			cmds = append(cmds, p.ZAdd(ctx, orphans, redis.Z{Score: due, Member: room}))
		}
		return cmds
	})
}
