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
	b := a.newBatch(entries, opts)
	reloaded := false
	for b.more() {
		_, _ = a.c.Redis().Pipelined(ctx, func(p redis.Pipeliner) error {
			b.queue(ctx, p)
			return nil
		})
		es, done, missingCode := b.finish()
		if missingCode {
			// Redis does not know the scripts (first use, or a
			// restart): load them and run the wave again. Entries whose
			// script ran return their cached result, the same as the
			// first time.
			err := errors.New("workers: Redis lacks the room scripts")
			if !reloaded {
				reloaded = true
				if err = a.scripts.load(ctx, a.c.Redis()); err == nil {
					b.retry()
					continue
				}
			}
			b.stopWave(err)
			continue
		}
		if opts.DeferLastWrites && len(b.res.Stopped) == 0 && !b.more() && !a.roomsOnly {
			b.applied(es, done)
			b.res.Deferred = &Writes{a: a, es: slices.Clone(es)}
			return b.res
		}
		if err := a.commit(ctx, es); err != nil {
			// Their scripts ran, their events are not written: the
			// entries count as not applied; applied again, each returns
			// its room's cached result and is written then.
			for _, i := range done {
				b.stop(entries[i].Partition, err)
			}
			continue
		}
		b.applied(es, done)
	}
	return b.res
}

// batch applies entries in waves, one wave per round trip (see
// ApplyBatch); the worker's shared read drives one wave at a time,
// sending its scripts in the same round trip as the previous wave's
// writes and the next read.
type batch struct {
	a       *Applier
	entries []BatchEntry
	opts    BatchOptions
	res     BatchResult
	wave    []int // each entry's wave
	waves   int
	next    int // the next wave to queue
	// The wave queued, not finished: its entries (indexes), their calls
	// and the script commands.
	idx   []int
	calls []*call
	cmds  []*redis.Cmd
	asked map[int]bool
}

func (a *Applier) newBatch(entries []BatchEntry, opts BatchOptions) *batch {
	b := &batch{a: a, entries: entries, opts: opts, wave: make([]int, len(entries)), asked: map[int]bool{},
		res: BatchResult{Applied: make([]bool, len(entries)), Outcomes: make([]Outcome, len(entries))}}
	if a.c.Config().DurableReplicas > 0 {
		for _, e := range entries {
			b.stop(e.Partition, ErrStopped)
		}
		return b
	}
	seen := make(map[string]int, len(entries))
	for i, e := range entries {
		b.wave[i] = seen[e.Env.RoomID]
		seen[e.Env.RoomID]++
		b.waves = max(b.waves, b.wave[i]+1)
	}
	return b
}

// stop stops partition p: its entries of later waves are left unapplied.
// The first error of a partition stands, except that being fenced wins:
// the caller must give the partition up.
func (b *batch) stop(p int, err error) {
	if b.res.Stopped == nil {
		b.res.Stopped = map[int]error{}
	}
	if prev, ok := b.res.Stopped[p]; !ok || errors.Is(err, ErrFenced) && !errors.Is(prev, ErrFenced) {
		b.res.Stopped[p] = err
	}
}

// more tells whether waves remain to queue.
func (b *batch) more() bool { return b.next < b.waves }

// queue plans the next wave and queues its scripts on p (none when every
// partition of the wave stopped).
func (b *batch) queue(ctx context.Context, p redis.Pipeliner) {
	w := b.next
	b.next++
	b.idx, b.calls, b.cmds = b.idx[:0], b.calls[:0], b.cmds[:0]
	clear(b.asked)
	for i, e := range b.entries {
		if b.wave[i] != w {
			continue
		}
		if _, stopped := b.res.Stopped[e.Partition]; stopped {
			continue
		}
		if b.opts.Proceed != nil {
			ok, was := b.asked[e.Partition]
			if !was {
				ok = b.opts.Proceed(e.Partition)
				b.asked[e.Partition] = ok
			}
			if !ok {
				b.stop(e.Partition, ErrStopped)
				continue
			}
		}
		c, err := b.a.plan(e.Token, e.Env)
		if err != nil {
			b.stop(e.Partition, err)
			continue
		}
		b.idx, b.calls = append(b.idx, i), append(b.calls, c)
	}
	for _, c := range b.calls {
		b.cmds = append(b.cmds, b.a.scripts.run(ctx, p, c.script, c.keys, c.args...))
	}
}

// retry queues the last wave again next time: its results were lost
// (the round trip failed) or Redis lacked the scripts. Applied again, an
// entry returns its room's cached result.
func (b *batch) retry() { b.next-- }

// finish reads the results of the queued wave: the effects of the
// entries it applied (done: their indexes) whose writes are the
// caller's to make. missingCode: Redis did not know the scripts.
func (b *batch) finish() (es []*effects, done []int, missingCode bool) {
	if noScript(b.cmds) {
		return nil, nil, true
	}
	for j, c := range b.calls {
		p := b.entries[b.idx[j]].Partition
		reply, err := b.cmds[j].StringSlice()
		if err != nil {
			// A script that failed may have changed some of the room:
			// its view is not to be trusted.
			b.a.views.drop(c.env.RoomID)
			b.stop(p, fmt.Errorf("apply %s %s to room %s: %w", c.env.Type, c.env.ID, c.env.RoomID, err))
			continue
		}
		e := newEffects(p, c.env)
		if err := b.a.interpret(c, reply, e); err != nil {
			b.stop(p, err)
			continue
		}
		es, done = append(es, e), append(done, b.idx[j])
	}
	return es, done, false
}

// stopWave stops the partitions of the queued wave's entries.
func (b *batch) stopWave(err error) {
	for _, i := range b.idx {
		b.stop(b.entries[i].Partition, err)
	}
}

// applied records entries done as applied, with their outcomes.
func (b *batch) applied(es []*effects, done []int) {
	for j, i := range done {
		b.res.Applied[i], b.res.Outcomes[i] = true, es[j].outcome
	}
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
		n += len(e.side) + len(e.order) + len(e.fed)
	}
	if n == 0 {
		return nil
	}
	now := a.now()
	durable := a.c.Config().DurableReplicas > 0
	write := func(p redis.Pipeliner) error {
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
	}
	cmds, err := a.c.Redis().Pipelined(ctx, write)
	if err != nil && missing(err) {
		err = a.feedAgain(ctx, cmds, es, now)
	}
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
	return a.commitFeedDurably(ctx, es, now)
}

// queueWrites queues the side effects and the outbound entries of es on
// p. Only the first entry to each connector trims that connector's
// stream to the recovery window: trimming costs Redis about as much as
// the append, and once per round trip keeps the stream as short. The
// events for the feed go last, one call per partition (feed.go).
func (a *Applier) queueWrites(ctx context.Context, p redis.Pipeliner, es []*effects) []redis.Cmder {
	cmds := make([]redis.Cmder, 0, 2*len(es))
	now := a.now()
	minID := a.c.OutboundMinID(now)
	trimmed := make(map[string]bool, 2)
	for _, e := range es {
		for _, f := range e.side {
			cmds = append(cmds, f(ctx, p)...)
		}
		for _, conn := range e.order {
			trim := minID
			if trimmed[conn] {
				trim = ""
			}
			trimmed[conn] = true
			cmds = append(cmds, p.XAdd(ctx, a.c.OutboundAppend(conn, e.out[conn], trim)))
		}
	}
	return append(cmds, a.queueFeed(ctx, p, es, now)...)
}
