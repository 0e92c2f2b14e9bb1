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
		done: func(res []string, e *effects) error {
			if res[0] != "ok" || len(res) < 5 {
				e.refuse(env, refusal(env, res))
				return nil
			}
			e.outcome.Status = "ok"
			e.replyOK(env)
			if res[1] == "1" {
				e.broadcast(res[2], env.RoomID, schemas.EventRoomLocked, mustJSON(schemas.RoomLockedPayload{
					RoomID: env.RoomID, LockedBy: env.UserID, LockedByName: env.UserName, LockedAt: res[3], Reason: res[4],
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
		done: func(res []string, e *effects) error {
			if res[0] == "noop" {
				e.outcome.Status = "noop"
				return nil
			}
			if res[0] != "ok" || len(res) < 4 {
				e.refuse(env, refusal(env, res))
				return nil
			}
			e.outcome.Status = "ok"
			payload := schemas.RoomUnlockedPayload{RoomID: env.RoomID, UnlockedAt: streams.ISOTime(env.At), Reason: reason}
			if caller != "" {
				payload.UnlockedBy, payload.UnlockedByName = env.UserID, env.UserName
				e.replyOK(env)
			}
			e.broadcast(res[3], env.RoomID, schemas.EventRoomUnlocked, mustJSON(payload))
			return nil
		}}, nil
}
