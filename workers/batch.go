package workers

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/streams"
)

// BatchEntry is one inbound entry of a batch: the partition it was read
// from, the lease token of that partition, and the envelope.
type BatchEntry struct {
	Partition int
	Token     int64
	Env       *streams.Envelope
}

// BatchOptions tune ApplyBatch.
type BatchOptions struct {
	// Proceed is asked before each wave, for each partition that has
	// entries in it (its lease is still valid); false stops that
	// partition with ErrStopped. Nil: always.
	Proceed func(partition int) bool
	// DeferLastWrites returns the last wave's writes instead of writing
	// them, when every entry of the batch was applied (see ApplyBatch).
	DeferLastWrites bool
}

// BatchResult says what ApplyBatch did.
type BatchResult struct {
	// Applied and Outcomes follow the batch's entries.
	Applied  []bool
	Outcomes []Outcome
	// Stopped holds the partitions that stopped early and why (ErrFenced,
	// ErrStopped, an entry's error): of each of their rooms, the entries
	// applied are a prefix; the caller applies the rest one at a time,
	// in order. Partitions absent from it had every entry applied.
	Stopped map[int]error
	// Deferred are the last wave's writes, not written yet
	// (DeferLastWrites, and nothing stopped): the caller writes them
	// before applying anything else (Writes.Queue in its next round
	// trip) and acknowledges their entries only once they are written.
	Deferred *Writes
}

// ApplyBatch applies entries read together, from one or several
// partitions, in as few round trips as their rooms allow: entries are
// grouped in waves, each holding at most one entry of a room (the first
// wave holds the first entry of each room, the next the second, and so
// on); a wave's scripts go to Redis in one pipeline, then its outbound
// entries and side effects in another. A room's events are thus applied
// in order, and at any moment at most one entry per room is applied
// without its events written: the room's last one, whose result the room
// caches, so a crash between the two round trips loses nothing (the entry
// is redelivered and re-sent). A room's entries all come from one
// partition, so a partition that stops (a failed entry, a lost lease,
// fencing) leaves the others applying.
//
// Durable mode (DurableReplicas > 0) applies nothing here: every write
// waits for replicas, entry by entry, through Apply; every partition of
// the batch is Stopped with ErrStopped.
//
// With DeferLastWrites, when every entry was applied, the last wave's
// writes are returned (Deferred) instead of written. Until they are
// written each of their entries is its room's last applied one, so a
// crash in between loses nothing.
func (a *Applier) ApplyBatch(ctx context.Context, entries []BatchEntry, opts BatchOptions) BatchResult {
	res := BatchResult{Applied: make([]bool, len(entries)), Outcomes: make([]Outcome, len(entries))}
	stop := func(p int, err error) {
		if res.Stopped == nil {
			res.Stopped = map[int]error{}
		}
		// The first error of a partition stands, except that being
		// fenced wins: the caller must give the partition up.
		if prev, ok := res.Stopped[p]; !ok || errors.Is(err, ErrFenced) && !errors.Is(prev, ErrFenced) {
			res.Stopped[p] = err
		}
	}
	if a.c.Config().DurableReplicas > 0 {
		for _, e := range entries {
			stop(e.Partition, ErrStopped)
		}
		return res
	}
	wave := make([]int, len(entries))
	seen := make(map[string]int, len(entries))
	waves := 0
	for i, e := range entries {
		wave[i] = seen[e.Env.RoomID]
		seen[e.Env.RoomID]++
		waves = max(waves, wave[i]+1)
	}
	idx := make([]int, 0, len(entries))
	calls := make([]*call, 0, len(entries))
	cmds := make([]*redis.Cmd, 0, len(entries))
	es := make([]*effects, 0, len(entries))
	done := make([]int, 0, len(entries))
	asked := map[int]bool{}
	for w := 0; w < waves; w++ {
		idx, calls, cmds, es, done = idx[:0], calls[:0], cmds[:0], es[:0], done[:0]
		clear(asked)
		for i, e := range entries {
			if wave[i] != w {
				continue
			}
			if _, stopped := res.Stopped[e.Partition]; stopped {
				continue
			}
			if opts.Proceed != nil {
				ok, was := asked[e.Partition]
				if !was {
					ok = opts.Proceed(e.Partition)
					asked[e.Partition] = ok
				}
				if !ok {
					stop(e.Partition, ErrStopped)
					continue
				}
			}
			c, err := a.plan(e.Token, e.Env)
			if err != nil {
				stop(e.Partition, err)
				continue
			}
			idx, calls = append(idx, i), append(calls, c)
		}
		if len(calls) == 0 {
			continue
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
			p := entries[idx[j]].Partition
			reply, err := cmds[j].StringSlice()
			if err != nil {
				stop(p, fmt.Errorf("apply %s %s to room %s: %w", c.env.Type, c.env.ID, c.env.RoomID, err))
				continue
			}
			e := newEffects(p, c.env)
			if err := a.interpret(c, reply, e); err != nil {
				stop(p, err)
				continue
			}
			es, done = append(es, e), append(done, idx[j])
		}
		if opts.DeferLastWrites && len(res.Stopped) == 0 && w == waves-1 && !a.roomsOnly {
			for j, i := range done {
				res.Applied[i], res.Outcomes[i] = true, es[j].outcome
			}
			res.Deferred = &Writes{a: a, es: slices.Clone(es)}
			return res
		}
		if err := a.commit(ctx, es); err != nil {
			// Their scripts ran, their events are not written: the
			// entries count as not applied; applied again, each returns
			// its room's cached result and is written then.
			for _, i := range done {
				stop(entries[i].Partition, err)
			}
			continue
		}
		for j, i := range done {
			res.Applied[i], res.Outcomes[i] = true, es[j].outcome
		}
	}
	return res
}

// Writes are the outbound entries and side effects of applied entries,
// not written yet (ApplyBatch with DeferLastWrites).
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
	cmds := wr.a.queueWrites(ctx, p, wr.es)
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
		if !durable {
			a.queueWrites(ctx, p, es)
			return nil
		}
		for _, e := range es {
			for _, f := range e.side {
				f(ctx, p)
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

// queueWrites queues the side effects and the outbound entries of es on
// p. Only the first entry to each connector trims that connector's
// stream to the recovery window: trimming costs Redis about as much as
// the append, and once per round trip keeps the stream as short.
func (a *Applier) queueWrites(ctx context.Context, p redis.Pipeliner, es []*effects) []redis.Cmder {
	var cmds []redis.Cmder
	now := a.now()
	trimmed := make(map[string]bool, 2)
	for _, e := range es {
		for _, f := range e.side {
			cmds = append(cmds, f(ctx, p)...)
		}
		for _, conn := range e.order {
			args := a.c.OutboundArgs(conn, e.out[conn], now)
			if trimmed[conn] {
				args.MinID, args.Approx = "", false
			}
			trimmed[conn] = true
			cmds = append(cmds, p.XAdd(ctx, args))
		}
	}
	return cmds
}
