package workers

import (
	"context"
	"fmt"

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
		done: func(r reply, e *effects) error {
			if r.status() == "not_found" {
				e.outcome.Status, e.outcome.Message = r.status(), fmt.Sprintf("room %s does not exist", env.RoomID)
				return nil
			}
			if !e.applied(env, r, publishFields) {
				return nil
			}
			e.broadcast(r.conns(), env.RoomID, env.Event, relay)
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
		done: func(r reply, e *effects) error {
			if !e.applied(env, r, evictFields) {
				return nil
			}
			v := r.evict()
			e.broadcast(v.conns, env.RoomID, schemas.EventUserLeft, mustJSON(schemas.UserLeftPayload{
				RoomID: env.RoomID, UserID: env.UserID, UserName: v.userName, LeftAt: streams.ISOTime(env.At), Reason: reason,
			}))
			for _, s := range v.removed {
				if s[0] != "" {
					e.member(s[1], streams.LeaveEvent, s[0], env.RoomID)
				}
			}
			a.userLeft(e, env, env.UserID, v.lockOrphaned)
			return nil
		}}
}
