package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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

const socketTTL = 24 * time.Hour

// Applier applies inbound entries to the Redis state of rooms and writes
// the resulting events to the connectors' outbound streams. The partition
// loops use it, and so does replay verification (on a scratch prefix).
type Applier struct {
	c            *streams.Client
	keys         streams.Keys
	scripts      roomScripts
	lockGrace    time.Duration
	emptyRoomTTL time.Duration
	now          func() time.Time
	// roomsOnly writes room keys only: no outbound entries, no side
	// effects (replay rebuilds rooms in a scratch prefix).
	roomsOnly bool
}

// NewApplier returns an applier writing through c.
func NewApplier(c *streams.Client, lockGrace, emptyRoomTTL time.Duration, now func() time.Time) *Applier {
	if now == nil {
		now = time.Now
	}
	return &Applier{c: c, keys: c.Keys, scripts: loadScripts(), lockGrace: lockGrace, emptyRoomTTL: emptyRoomTTL, now: now}
}

// RoomsOnly returns a copy of a that changes the room keys (KEYS of the
// room scripts) like a, with the same outcomes, but writes nothing else:
// no outbound entry and none of the side effects outside the room's slot
// (user:{u}:rooms, upload:{id}:progress, locks:orphaned). Replay uses it
// to rebuild rooms in a scratch prefix: the scripts read room keys only,
// so outcomes do not depend on what it leaves out, and it saves a round
// trip per entry.
func (a *Applier) RoomsOnly() *Applier {
	b := *a
	b.roomsOnly = true
	return &b
}

// Outcome says what applying one entry did; replay reports it.
type Outcome struct {
	Status  string // "ok", "noop", "dup" or a refusal code
	Message string // why, for a refusal: the message its sender received
	Events  []string
}

// effects collects what one entry produces: outbound messages grouped by
// connector (one entry per connector) and idempotent writes to keys
// outside the room's slot.
type effects struct {
	partition int
	source    string
	order     []string
	out       map[string]*streams.Outbound
	side      []func(context.Context, redis.Pipeliner)
	outcome   Outcome
}

func (e *effects) send(connector string, m streams.Message) {
	o, ok := e.out[connector]
	if !ok {
		o = &streams.Outbound{Partition: e.partition, Source: e.source}
		e.out[connector] = o
		e.order = append(e.order, connector)
	}
	o.Messages = append(o.Messages, m)
}

// broadcast sends event to every socket in targets ("sid\x1cconn\x1d...").
func (e *effects) broadcast(targets, event string, body any) {
	if targets == "" {
		return
	}
	b := mustJSON(body)
	by := map[string][]string{}
	var conns []string
	for _, t := range strings.Split(targets, "\x1d") {
		sid, conn, ok := strings.Cut(t, "\x1c")
		if !ok {
			continue
		}
		if _, seen := by[conn]; !seen {
			conns = append(conns, conn)
		}
		by[conn] = append(by[conn], sid)
	}
	for _, conn := range conns {
		e.send(conn, streams.Message{Event: event, Body: b, To: by[conn]})
	}
	e.outcome.Events = append(e.outcome.Events, event)
}

// reply answers the sender: with an ack when it asked for one, else with
// an `error` event on refusal (and nothing on plain success).
func (e *effects) reply(env *streams.Envelope, ack schemas.Ack) {
	if env.SocketID == "" || env.ConnectorID == "" {
		return
	}
	if env.HasAck {
		e.send(env.ConnectorID, streams.Message{AckID: env.AckID, Body: mustJSON(ack), To: []string{env.SocketID}})
		return
	}
	if ack.Error != nil {
		e.send(env.ConnectorID, streams.Message{Event: schemas.EventError, Body: mustJSON(ack.Error), To: []string{env.SocketID}})
	}
}

func (e *effects) refuse(env *streams.Envelope, err *schemas.Error) {
	e.outcome.Status, e.outcome.Message = string(err.Code), err.Message
	e.reply(env, schemas.Ack{Error: err.WithEvent(env.Type, env.RoomID)})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("workers: encode %T: %v", v, err)) // only plain structs are encoded
	}
	return b
}

// Apply applies one inbound entry of partition p under lease token and
// writes what it produced. It is idempotent: applying an entry again
// changes nothing and re-sends the same events, which connectors drop.
func (a *Applier) Apply(ctx context.Context, p int, token int64, env *streams.Envelope) (Outcome, error) {
	e := &effects{partition: p, source: env.ID, out: map[string]*streams.Outbound{}}
	var err error
	switch env.Type {
	case schemas.EventJoinRoom:
		err = a.join(ctx, token, env, e)
	case schemas.EventLeaveRoom, schemas.CmdDisconnect:
		err = a.leave(ctx, token, env, e)
	case schemas.CmdMove:
		err = a.move(ctx, token, env, e)
	case schemas.EventLockRoom:
		err = a.lock(ctx, token, env, e)
	case schemas.EventUnlockRoom, schemas.CmdLockExpire:
		err = a.unlock(ctx, token, env, e)
	case schemas.EventFileUploadStarted, schemas.EventFileUploadProgress,
		schemas.EventFileUploadCompleted, schemas.EventFileUploadFailed:
		err = a.upload(ctx, token, env, e)
	default:
		return Outcome{}, fmt.Errorf("%w: unknown type %q", ErrPermanent, env.Type)
	}
	if err != nil {
		return e.outcome, err
	}
	return e.outcome, a.commit(ctx, e)
}

// commit writes the side effects and the outbound entries in one pipeline.
func (a *Applier) commit(ctx context.Context, e *effects) error {
	if a.roomsOnly || len(e.side) == 0 && len(e.order) == 0 {
		return nil
	}
	now := a.now()
	durable := a.c.Config().DurableReplicas > 0
	_, err := a.c.Redis().Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, f := range e.side {
			f(ctx, p)
		}
		if !durable {
			for _, conn := range e.order {
				p.XAdd(ctx, a.c.OutboundArgs(conn, e.out[conn], now))
			}
		}
		return nil
	})
	if err != nil || !durable {
		return err
	}
	// Durable mode: each outbound entry is on a replica before the inbound
	// entry is acknowledged, so a failover cannot lose a delivery.
	for _, conn := range e.order {
		args := a.c.OutboundArgs(conn, e.out[conn], now)
		if err := a.c.Durably(ctx, args.Stream, func(p redis.Pipeliner) { p.XAdd(ctx, args) }); err != nil {
			return err
		}
	}
	return nil
}

// run executes a room script for env and returns its result; "dup" and
// "fenced" are handled here.
func (a *Applier) run(ctx context.Context, s *redis.Script, token int64, env *streams.Envelope, extra ...any) ([]string, error) {
	if !schemas.ValidID(env.RoomID) {
		return nil, fmt.Errorf("%w: bad room id %q", ErrPermanent, env.RoomID)
	}
	keys := a.keys.RoomKeys(env.RoomID)
	sock, origin := "", ""
	if env.Seq > 0 {
		sock, origin = env.SocketID, env.Origin
	}
	args := append([]any{env.ID, token, streams.ISOTime(env.At), int64(a.emptyRoomTTL / time.Second), env.RoomID,
		sock, origin, env.Seq}, extra...)
	var res []string
	var err error
	if a.c.Config().DurableReplicas > 0 {
		res, err = a.runDurably(ctx, s, keys, args)
	} else {
		res, err = s.Run(ctx, a.c.Redis(), keys, args...).StringSlice()
	}
	if err != nil {
		return nil, fmt.Errorf("apply %s %s to room %s: %w", env.Type, env.ID, env.RoomID, err)
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("apply %s %s: empty script result", env.Type, env.ID)
	}
	if res[0] == "fenced" {
		return nil, ErrFenced
	}
	return res, nil
}

// runDurably runs the script and WAITs for replicas on the same
// connection, so that the state change is on a replica before anyone is
// told about it.
func (a *Applier) runDurably(ctx context.Context, s *redis.Script, keys []string, args []any) ([]string, error) {
	for attempt := 0; ; attempt++ {
		var cmd *redis.Cmd
		err := a.c.Durably(ctx, keys[0], func(p redis.Pipeliner) {
			if attempt == 0 {
				cmd = s.EvalSha(ctx, p, keys, args...)
			} else {
				cmd = s.Eval(ctx, p, keys, args...)
			}
		})
		if cmd != nil && cmd.Err() != nil && strings.HasPrefix(cmd.Err().Error(), "NOSCRIPT") && attempt == 0 {
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

func (a *Applier) decode(env *streams.Envelope, v any) error {
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
