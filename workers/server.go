package workers

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// Commands of the HTTP API (connector/api). They come through the room's
// partition like client events, so they are ordered with them, applied
// once and in the audit log.

// publish delivers a server event to the room's members: file-added
// (the file joins the room's files, and ends the upload it completes) or
// a custom event (delivered as given).
func (a *Applier) publish(env *streams.Envelope) (*call, error) {
	var (
		args  []any
		relay []byte
		ended string // upload the file completes
	)
	switch {
	case env.Event == schemas.EventFileAdded:
		var p schemas.FileAddedPayload
		if err := decode(env, &p); err != nil {
			return nil, err
		}
		if !schemas.ValidID(p.File.ID) {
			return nil, fmt.Errorf("%w: file-added %s: bad file id %q", ErrPermanent, env.ID, p.File.ID)
		}
		if p.File.CreatedAt == "" {
			p.File.CreatedAt = streams.ISOTime(env.At)
		}
		p.RoomID, ended = env.RoomID, env.Target
		relay = mustJSON(p)
		args = []any{"file", p.File.ID, mustJSON(p.File), ended}
	case schemas.ValidCustomEvent(env.Event):
		relay = env.Data
		args = []any{"custom", "", "", ""}
	default:
		return nil, fmt.Errorf("%w: server event %q", ErrPermanent, env.Event)
	}
	return &call{script: a.scripts.publish, args: args,
		done: func(res []string, e *effects) error {
			if res[0] == "not_found" {
				e.outcome.Status, e.outcome.Message = res[0], fmt.Sprintf("room %s does not exist", env.RoomID)
				return nil
			}
			if res[0] != "ok" || len(res) < 2 {
				e.refuse(env, refusal(env, res))
				return nil
			}
			e.outcome.Status = "ok"
			e.broadcast(res[1], env.RoomID, env.Event, relay)
			if ended != "" {
				key := a.keys.UploadProgress(ended)
				e.side = append(e.side, func(ctx context.Context, p redis.Pipeliner) []redis.Cmder {
					return []redis.Cmder{p.Del(ctx, key)}
				})
			}
			return nil
		}}, nil
}

// evict removes every socket of user env.UserID from the room: the room
// hears user-left (reason in the entry, "removed"), the user's sockets
// included, then their connectors drop them from the room.
func (a *Applier) evict(env *streams.Envelope) *call {
	reason := env.Reason
	if reason == "" {
		reason = schemas.ReasonRemoved
	}
	return &call{script: a.scripts.evict, args: []any{env.UserID},
		done: func(res []string, e *effects) error {
			if res[0] != "ok" || len(res) < 6 {
				e.refuse(env, refusal(env, res))
				return nil
			}
			e.outcome.Status = "ok"
			uname, conns, orphan := res[1], res[2], res[3] == "1"
			e.broadcast(conns, env.RoomID, schemas.EventUserLeft, mustJSON(schemas.UserLeftPayload{
				RoomID: env.RoomID, UserID: env.UserID, UserName: uname, LeftAt: streams.ISOTime(env.At), Reason: reason,
			}))
			for _, s := range strings.Split(res[5], "\x1d") {
				sid, conn, _ := strings.Cut(s, "\x1f")
				if sid != "" {
					e.member(conn, streams.LeaveEvent, sid, env.RoomID)
				}
			}
			a.userLeft(e, env, env.UserID, orphan)
			return nil
		}}
}
