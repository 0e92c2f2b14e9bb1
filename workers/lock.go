package workers

import (
	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// lock: a member locks the room; everyone hears room-locked.
func (a *Applier) lock(env *streams.Envelope) (*call, error) {
	var p schemas.LockRoomPayload
	if err := decode(env, &p); err != nil {
		return nil, err
	}
	return &call{script: a.scripts.lock, args: []any{env.UserID, env.UserName, p.Reason},
		done: func(r reply, e *effects) error {
			if !e.applied(env, r, lockFields) {
				return nil
			}
			e.replyOK(env)
			if l := r.lock(); l.changed {
				e.broadcast(l.conns, env.RoomID, schemas.EventRoomLocked, mustJSON(schemas.RoomLockedPayload{
					RoomID: env.RoomID, LockedBy: env.UserID, LockedByName: env.UserName, LockedAt: l.lockedAt, Reason: l.reason,
				}))
			}
			return nil
		}}, nil
}

// unlock handles unlock-room (only the holder may), lock-expire (the
// holder left for longer than the lock grace period) and operator-unlock
// (HTTP API: whoever holds it).
func (a *Applier) unlock(env *streams.Envelope) (*call, error) {
	caller, reason, mode := env.UserID, "", ""
	switch env.Type {
	case schemas.CmdLockExpire:
		caller, reason = "", env.Reason
	case schemas.CmdOperatorUnlock:
		caller, reason, mode = "", schemas.ReasonOperator, "operator"
	default:
		var p schemas.UnlockRoomPayload
		if err := decode(env, &p); err != nil {
			return nil, err
		}
		reason = p.Reason
	}
	return &call{script: a.scripts.unlock, args: []any{caller, mode},
		done: func(r reply, e *effects) error {
			if r.status() == "noop" {
				e.outcome.Status = "noop"
				return nil
			}
			if !e.applied(env, r, unlockFields) {
				return nil
			}
			payload := schemas.RoomUnlockedPayload{RoomID: env.RoomID, UnlockedAt: streams.ISOTime(env.At), Reason: reason}
			if caller != "" {
				payload.UnlockedBy, payload.UnlockedByName = env.UserID, env.UserName
				e.replyOK(env)
			}
			e.broadcast(r.unlockConns(), env.RoomID, schemas.EventRoomUnlocked, mustJSON(payload))
			return nil
		}}, nil
}
