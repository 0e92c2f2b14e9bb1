package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// ErrFenced means a worker holding a newer lease of the partition has
// already written to the room: this worker lost its lease and must stop
// applying the partition.
var ErrFenced = errors.New("workers: fenced by a newer lease owner")

// ErrPermanent marks failures that retrying cannot fix (the entry goes to
// the dead letters at once).
var ErrPermanent = errors.New("workers: entry cannot be applied")

// ErrStopped is returned by ApplyBatch when its caller said to stop
// before every entry was applied.
var ErrStopped = errors.New("workers: batch stopped")

const socketTTL = 24 * time.Hour

// Applier applies inbound entries to the Redis state of rooms and writes
// the resulting events to the connectors' outbound streams. The partition
// loops use it, and so does the audit package (on a scratch prefix).
type Applier struct {
	c            *streams.Client
	keys         streams.Keys
	scripts      roomScripts
	lockGrace    time.Duration
	emptyRoomTTL time.Duration
	limits       Limits
	now          func() time.Time
	// roomsOnly writes room keys only: no outbound entries, no side
	// effects (the audit package rebuilds rooms in a scratch prefix).
	roomsOnly bool
	// views lets progress reports skip the checks their room already
	// passed (see views.go).
	views *views
	// roomKeys keeps the key lists of rooms applied lately.
	roomKeys *keyCache
	// feed writes the applied-events feed (feed.go); nil: off.
	feed *feed
}

// NewApplier returns an applier writing through c.
func NewApplier(c *streams.Client, lockGrace, emptyRoomTTL time.Duration, now func() time.Time) *Applier {
	if now == nil {
		now = time.Now
	}
	return &Applier{c: c, keys: c.Keys, scripts: loadScripts(), lockGrace: lockGrace, emptyRoomTTL: emptyRoomTTL,
		limits: DefaultLimits(), now: now, views: &views{}, roomKeys: &keyCache{}}
}

// WithLimits returns a copy of a that keeps rooms within l (its zero
// fields: the defaults). Workers and the audit package must use the same
// limits.
func (a *Applier) WithLimits(l Limits) *Applier {
	b := *a
	b.limits = l.orDefaults()
	return &b
}

// RoomsOnly returns a copy of a that changes the room keys (KEYS of the
// room scripts) like a, with the same outcomes, but writes nothing else:
// no outbound entry and none of the side effects outside the room's slot
// (user:{u}:rooms, upload:{id}:progress, locks:orphaned). The audit
// package uses it to rebuild rooms in a scratch prefix: the scripts read
// room keys only, so outcomes do not depend on what it leaves out, and it
// saves a round trip per entry.
func (a *Applier) RoomsOnly() *Applier {
	b := *a
	b.roomsOnly = true
	return &b
}

// Outcome says what applying one entry did; the audit package reports
// it.
type Outcome struct {
	Status  string // "ok", "noop", "dup" or a refusal code
	Message string // why, for a refusal: the message its sender received
	Events  []string
}

// call is one room script to run for one entry, and what its result
// means.
type call struct {
	env    *streams.Envelope
	script *roomScript
	keys   []string
	args   []any
	// done turns the script's result (first element 'ok', 'noop' or a
	// refusal code; 'dup' and 'fenced' are handled before) into effects.
	done func(r reply, e *effects) error
	// progress, for a progress report, records it in the room's view
	// once applied (see views.go); every other outcome drops the view.
	progress func(r reply)
}

// plan prepares the room script of env under lease token.
func (a *Applier) plan(token int64, env *streams.Envelope) (*call, error) {
	if !schemas.ValidID(env.RoomID) {
		return nil, fmt.Errorf("%w: bad room id %q", ErrPermanent, env.RoomID)
	}
	var (
		c   *call
		err error
	)
	switch env.Type {
	case schemas.EventJoinRoom:
		c = a.join(env)
	case schemas.EventLeaveRoom, schemas.CmdDisconnect:
		c = a.leave(env)
	case schemas.CmdMove:
		c = a.move(env)
	case schemas.EventLockRoom:
		c, err = a.lock(env)
	case schemas.EventUnlockRoom, schemas.CmdLockExpire, schemas.CmdOperatorUnlock:
		c, err = a.unlock(env)
	case schemas.CmdPublish:
		c, err = a.publish(env)
	case schemas.CmdRemoveMember:
		c = a.evict(env)
	case schemas.EventFileUploadStarted, schemas.EventFileUploadProgress,
		schemas.EventFileUploadCompleted, schemas.EventFileUploadFailed:
		c, err = a.upload(env)
	default:
		return nil, fmt.Errorf("%w: unknown type %q", ErrPermanent, env.Type)
	}
	if err != nil {
		return nil, err
	}
	sock, origin := "", ""
	if env.Seq > 0 {
		sock, origin = env.SocketID, env.Origin
	}
	c.env = env
	c.keys = a.roomKeys.get(a.keys, env.RoomID)
	c.args = append([]any{env.ID, token, streams.ISOTime(env.At), int64(a.emptyRoomTTL / time.Second), env.RoomID,
		sock, origin, env.Seq}, c.args...)
	return c, nil
}

// interpret turns a script result into effects; "dup" and "fenced" are
// handled here.
func (a *Applier) interpret(c *call, res []string, e *effects) error {
	if len(res) == 0 {
		return fmt.Errorf("apply %s %s: empty script result", c.env.Type, c.env.ID)
	}
	e.feed = a.feedMode()
	switch res[0] {
	case "fenced":
		a.views.drop(c.env.RoomID)
		return ErrFenced
	case "dup":
		a.views.drop(c.env.RoomID)
		e.outcome.Status = "dup"
		return nil
	}
	err := c.done(res, e)
	if c.progress != nil && err == nil && e.outcome.Status == "ok" {
		c.progress(reply(res))
	} else {
		a.views.drop(c.env.RoomID)
	}
	return err
}

// Apply applies one inbound entry of partition p under lease token and
// writes what it produced. It is idempotent: applying an entry again
// changes nothing and re-sends the same events, which connectors drop.
func (a *Applier) Apply(ctx context.Context, p int, token int64, env *streams.Envelope) (Outcome, error) {
	c, err := a.plan(token, env)
	if err != nil {
		return Outcome{}, err
	}
	var res []string
	if a.c.Config().DurableReplicas > 0 {
		res, err = a.runDurably(ctx, c)
	} else {
		res, err = a.scripts.call(ctx, a.c.Redis(), c.script, c.keys, c.args...).StringSlice()
	}
	if err != nil {
		a.views.drop(env.RoomID)
		return Outcome{}, fmt.Errorf("apply %s %s to room %s: %w", env.Type, env.ID, env.RoomID, err)
	}
	e := newEffects(p, env)
	if err := a.interpret(c, res, e); err != nil {
		return e.outcome, err
	}
	return e.outcome, a.commit(ctx, []*effects{e})
}

// runDurably runs the script and WAITs for replicas on the same
// connection, so that the state change is on a replica before anyone is
// told about it.
func (a *Applier) runDurably(ctx context.Context, c *call) ([]string, error) {
	for attempt := 0; ; attempt++ {
		var cmd *redis.Cmd
		err := a.c.Durably(ctx, c.keys[0], func(p redis.Pipeliner) {
			cmd = a.scripts.run(ctx, p, c.script, c.keys, c.args...)
		})
		if cmd != nil && missing(cmd.Err()) && attempt == 0 {
			if err := a.scripts.load(ctx, a.c.Redis()); err != nil {
				return nil, err
			}
			continue
		}
		if cmd != nil && cmd.Err() != nil {
			return nil, cmd.Err()
		}
		if err != nil {
			return nil, err
		}
		return cmd.StringSlice()
	}
}

func decode(env *streams.Envelope, v any) error {
	if err := json.Unmarshal(env.Data, v); err != nil {
		return fmt.Errorf("%w: %s payload of %s: %v", ErrPermanent, env.Type, env.ID, err)
	}
	return nil
}

// refusal maps a script status to the error the sender receives.
func refusal(env *streams.Envelope, res []string) *schemas.Error {
	code := schemas.Code(res[0])
	arg := func(i int) string {
		if i < len(res) {
			return res[i]
		}
		return ""
	}
	switch code {
	case schemas.CodeRoomLocked:
		return schemas.Errorf(code, "room %s is locked by %s since %s", env.RoomID, nameOr(arg(2), arg(1)), arg(3))
	case schemas.CodeNotMember:
		return schemas.Errorf(code, "join room %s first", env.RoomID)
	case schemas.CodeNotLocked:
		return schemas.Errorf(code, "room %s is not locked", env.RoomID)
	case schemas.CodeNotLockHolder:
		return schemas.Errorf(code, "room %s is locked by %s; only they can unlock it", env.RoomID, nameOr(arg(2), arg(1)))
	case schemas.CodeForbidden:
		return schemas.Errorf(code, "this upload belongs to user %s", arg(1))
	case schemas.CodeRoomFull:
		return schemas.Errorf(code, "room %s is full: it holds %s users at most", env.RoomID, arg(1))
	case schemas.CodeTooManyUploads:
		return schemas.Errorf(code, "room %s has %s uploads in progress, the most it allows; wait for one to end", env.RoomID, arg(1))
	case schemas.CodeTooManyFiles:
		return schemas.Errorf(code, "room %s holds %s files, the most it allows", env.RoomID, arg(1))
	case schemas.CodeUploadNotStarted:
		return schemas.Errorf(code, "you have no upload %s of file %s in room %s: send file-upload-started first", arg(1), arg(2), env.RoomID)
	case schemas.CodeNotOwner:
		return schemas.Errorf(code, "file %s belongs to user %s; only they can replace it", arg(1), arg(2))
	}
	if code.Known() {
		return schemas.NewError(code, "")
	}
	return schemas.Errorf(schemas.CodeInternal, "unexpected outcome %q", res[0])
}

func nameOr(name, id string) string {
	if name != "" {
		return name
	}
	return id
}
