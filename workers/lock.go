package workers

import (
	"context"

	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// lock: a member locks the room; everyone hears room-locked.
func (a *Applier) lock(ctx context.Context, token int64, env *streams.Envelope, e *effects) error {
	var p schemas.LockRoomPayload
	if err := a.decode(env, &p); err != nil {
		return err
	}
	res, err := a.run(ctx, a.scripts.lock, token, env, env.UserID, env.UserName, p.Reason)
	if err != nil || res[0] == "dup" {
		e.outcome.Status = statusOf(res)
		return err
	}
	if res[0] != "ok" || len(res) < 5 {
		e.refuse(env, refusal(env, res))
		return nil
	}
	e.outcome.Status = "ok"
	e.reply(env, schemas.Ack{OK: true})
	if res[1] == "1" {
		e.broadcast(res[2], schemas.EventRoomLocked, schemas.RoomLockedPayload{
			RoomID: env.RoomID, LockedBy: env.UserID, LockedByName: env.UserName, LockedAt: res[3], Reason: res[4],
		})
	}
	return nil
}

// unlock handles unlock-room (only the holder may) and lock-expire (the
// holder left for longer than the lock grace period).
func (a *Applier) unlock(ctx context.Context, token int64, env *streams.Envelope, e *effects) error {
	caller, reason := env.UserID, ""
	if env.Type == schemas.CmdLockExpire {
		caller, reason = "", env.Reason
	} else {
		var p schemas.UnlockRoomPayload
		if err := a.decode(env, &p); err != nil {
			return err
		}
		reason = p.Reason
	}
	res, err := a.run(ctx, a.scripts.unlock, token, env, caller)
	if err != nil || res[0] == "dup" || res[0] == "noop" {
		e.outcome.Status = statusOf(res)
		return err
	}
	if res[0] != "ok" || len(res) < 4 {
		e.refuse(env, refusal(env, res))
		return nil
	}
	e.outcome.Status = "ok"
	payload := schemas.RoomUnlockedPayload{RoomID: env.RoomID, UnlockedAt: streams.ISOTime(env.At), Reason: reason}
	if caller != "" {
		payload.UnlockedBy, payload.UnlockedByName = env.UserID, env.UserName
		e.reply(env, schemas.Ack{OK: true})
	}
	e.broadcast(res[3], schemas.EventRoomUnlocked, payload)
	return nil
}
