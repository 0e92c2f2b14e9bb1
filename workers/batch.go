package workers

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/streams"
)

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
