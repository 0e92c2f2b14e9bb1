package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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

// ErrStopped is returned by ApplyBatch when its caller said to stop
// before every entry was applied.
var ErrStopped = errors.New("workers: batch stopped")

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
	limits       Limits
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
	return &Applier{c: c, keys: c.Keys, scripts: loadScripts(), lockGrace: lockGrace, emptyRoomTTL: emptyRoomTTL,
		limits: DefaultLimits(), now: now}
}

// WithLimits returns a copy of a that keeps rooms within l (its zero
// fields: the defaults). Workers and replay must use the same limits.
func (a *Applier) WithLimits(l Limits) *Applier {
	b := *a
	b.limits = l.orDefaults()
	return &b
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
	room      string
	order     []string
	out       map[string]*streams.Outbound
	side      []func(context.Context, redis.Pipeliner) []redis.Cmder
	outcome   Outcome
}

func newEffects(p int, env *streams.Envelope) *effects {
	return &effects{partition: p, source: env.ID, room: env.RoomID, out: make(map[string]*streams.Outbound, 2)}
}

func (e *effects) send(connector string, m streams.Message) {
	o, ok := e.out[connector]
	if !ok {
		o = &streams.Outbound{Partition: e.partition, Source: e.source, Room: e.room}
		e.out[connector] = o
		e.order = append(e.order, connector)
	}
	o.Messages = append(o.Messages, m)
}

// broadcast sends event to the room's members on every connector in
// conns (as the room scripts return them: ids joined by streams.ListSep). One
// message per connector names the room; each connector delivers it to
// its own members.
func (e *effects) broadcast(conns, room, event string, body []byte) {
	for conns != "" {
		var conn string
		conn, conns, _ = strings.Cut(conns, streams.ListSep)
		if conn != "" {
			e.send(conn, streams.Message{Event: event, Body: body, Room: room})
		}
	}
	e.outcome.Events = append(e.outcome.Events, event)
}

// member tells connector conn that socket sid joined or left room (op is
// streams.JoinEvent or streams.LeaveEvent).
func (e *effects) member(conn, op, sid, room string) {
	if conn != "" {
		e.send(conn, streams.Message{Event: op, Room: room, To: []string{sid}})
	}
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

// okAck is the acknowledgement of a plain success, encoded once.
var okAck = mustJSON(schemas.Ack{OK: true})

// replyOK acknowledges a success when the sender asked for it.
func (e *effects) replyOK(env *streams.Envelope) {
	if env.HasAck && env.SocketID != "" && env.ConnectorID != "" {
		e.send(env.ConnectorID, streams.Message{AckID: env.AckID, Body: okAck, To: []string{env.SocketID}})
	}
}

func (e *effects) refuse(env *streams.Envelope, err *schemas.Error) {
	e.outcome.Status, e.outcome.Message = string(err.Code), err.Message
	e.reply(env, schemas.Ack{Error: err.WithEvent(env.Type, env.RoomID)})
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
	c.keys = a.keys.RoomKeys(env.RoomID)
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
	switch res[0] {
	case "fenced":
		return ErrFenced
	case "dup":
		e.outcome.Status = "dup"
		return nil
	}
	return c.done(res, e)
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
		return Outcome{}, fmt.Errorf("apply %s %s to room %s: %w", env.Type, env.ID, env.RoomID, err)
	}
	e := newEffects(p, env)
	if err := a.interpret(c, res, e); err != nil {
		return e.outcome, err
	}
	return e.outcome, a.commit(ctx, []*effects{e})
}

// ApplyBatch applies entries of partition p read together, in as few round
// trips as their rooms allow: entries are grouped in waves, each holding at
// most one entry of a room (the first wave holds the first entry of each
// room, the next the second, and so on); a wave's scripts go to Redis in
// one pipeline, then its outbound entries and side effects in another. A
// room's events are thus applied in order, and at any moment at most one
// entry per room is applied without its events written: the room's last
// one, whose result the room caches, so a crash between the two round
// trips loses nothing (the entry is redelivered and re-sent).
//
// proceed is asked before each wave (the lease is still valid). ApplyBatch
// returns which entries were applied and their outcomes; when err is not
// nil it stopped early (a failed entry, ErrFenced, ErrStopped): the entries
// of each room that were applied are a prefix of that room's entries, and
// the caller applies the others one at a time, in order. Durable mode
// (DurableReplicas > 0) applies nothing here: every write waits for
// replicas, entry by entry, through Apply.
//
// With later set, when every entry was applied, the last wave's writes
// are returned instead of written: the caller writes them in its next
// round trip (Writes.Queue) and acknowledges those entries only once they
// are written. Until then each of its entries is its room's last applied
// one, so a crash in between loses nothing; the caller must write them
// before applying anything else.
func (a *Applier) ApplyBatch(ctx context.Context, p int, token int64, envs []*streams.Envelope, proceed func() bool, later bool) (applied []bool, outs []Outcome, pending *Writes, err error) {
	applied, outs = make([]bool, len(envs)), make([]Outcome, len(envs))
	if a.c.Config().DurableReplicas > 0 {
		return applied, outs, nil, ErrStopped
	}
	wave := make([]int, len(envs))
	seen := make(map[string]int, len(envs))
	waves := 0
	for i, env := range envs {
		wave[i] = seen[env.RoomID]
		seen[env.RoomID]++
		waves = max(waves, wave[i]+1)
	}
	idx := make([]int, 0, len(envs))
	calls := make([]*call, 0, len(envs))
	cmds := make([]*redis.Cmd, 0, len(envs))
	es := make([]*effects, 0, len(envs))
	done := make([]int, 0, len(envs))
	for w := 0; w < waves; w++ {
		if proceed != nil && !proceed() {
			return applied, outs, nil, ErrStopped
		}
		idx, calls, cmds, es, done = idx[:0], calls[:0], cmds[:0], es[:0], done[:0]
		var first error
		for i, env := range envs {
			if wave[i] != w {
				continue
			}
			c, err := a.plan(token, env)
			if err != nil {
				first = keepFirst(first, err)
				continue
			}
			idx, calls = append(idx, i), append(calls, c)
		}
		for attempt := 0; ; attempt++ {
			cmds = cmds[:0]
			_, _ = a.c.Redis().Pipelined(ctx, func(pl redis.Pipeliner) error {
				for _, c := range calls {
					cmds = append(cmds, a.scripts.run(ctx, pl, c.script, c.keys, c.args...))
				}
				return nil
			})
			if attempt > 0 || !noScript(cmds) {
				break
			}
			// Redis does not know the scripts (first use, or a restart):
			// load them and run the wave again. Entries whose script ran
			// return their cached result, the same as the first time.
			if err := a.scripts.load(ctx, a.c.Redis()); err != nil {
				break
			}
		}
		for j, c := range calls {
			res, err := cmds[j].StringSlice()
			if err != nil {
				first = keepFirst(first, fmt.Errorf("apply %s %s to room %s: %w", c.env.Type, c.env.ID, c.env.RoomID, err))
				continue
			}
			e := newEffects(p, c.env)
			if err := a.interpret(c, res, e); err != nil {
				first = keepFirst(first, err)
				continue
			}
			es, done = append(es, e), append(done, idx[j])
		}
		if later && first == nil && w == waves-1 && !a.roomsOnly {
			for j, i := range done {
				applied[i], outs[i] = true, es[j].outcome
			}
			return applied, outs, &Writes{a: a, es: slices.Clone(es)}, nil
		}
		if err := a.commit(ctx, es); err != nil {
			return applied, outs, nil, err
		}
		for j, i := range done {
			applied[i], outs[i] = true, es[j].outcome
		}
		if first != nil {
			return applied, outs, nil, first
		}
	}
	return applied, outs, nil, nil
}

// Writes are the outbound entries and side effects of applied entries,
// not written yet (ApplyBatch with later set).
type Writes struct {
	a  *Applier
	es []*effects
}

// Write writes them now.
func (wr *Writes) Write(ctx context.Context) error {
	if wr == nil {
		return nil
	}
	return wr.a.commit(ctx, wr.es)
}

// Queue adds them to p (durable mode never defers writes); the function
// it returns tells, once p ran, whether all of them were written.
func (wr *Writes) Queue(ctx context.Context, p redis.Pipeliner) func() error {
	if wr == nil {
		return func() error { return nil }
	}
	var cmds []redis.Cmder
	now := wr.a.now()
	for _, e := range wr.es {
		for _, f := range e.side {
			cmds = append(cmds, f(ctx, p)...)
		}
		for _, conn := range e.order {
			cmds = append(cmds, p.XAdd(ctx, wr.a.c.OutboundArgs(conn, e.out[conn], now)))
		}
	}
	return func() error {
		for _, c := range cmds {
			if err := c.Err(); err != nil {
				return err
			}
		}
		return nil
	}
}

func noScript(cmds []*redis.Cmd) bool {
	for _, c := range cmds {
		if missing(c.Err()) {
			return true
		}
	}
	return false
}

// keepFirst keeps the first error, except that being fenced wins: the caller
// must stop at once.
func keepFirst(first, err error) error {
	if first == nil || errors.Is(err, ErrFenced) {
		return err
	}
	return first
}

// commit writes the side effects and the outbound entries of es in one
// pipeline.
func (a *Applier) commit(ctx context.Context, es []*effects) error {
	if a.roomsOnly {
		return nil
	}
	n := 0
	for _, e := range es {
		n += len(e.side) + len(e.order)
	}
	if n == 0 {
		return nil
	}
	now := a.now()
	durable := a.c.Config().DurableReplicas > 0
	_, err := a.c.Redis().Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, e := range es {
			for _, f := range e.side {
				f(ctx, p)
			}
			if !durable {
				for _, conn := range e.order {
					p.XAdd(ctx, a.c.OutboundArgs(conn, e.out[conn], now))
				}
			}
		}
		return nil
	})
	if err != nil || !durable {
		return err
	}
	// Durable mode: each outbound entry is on a replica before the inbound
	// entry is acknowledged, so a failover cannot lose a delivery.
	for _, e := range es {
		for _, conn := range e.order {
			args := a.c.OutboundArgs(conn, e.out[conn], now)
			if err := a.c.Durably(ctx, args.Stream, func(p redis.Pipeliner) { p.XAdd(ctx, args) }); err != nil {
				return err
			}
		}
	}
	return nil
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
