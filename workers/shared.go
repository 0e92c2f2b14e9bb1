package workers

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/streams"
)

// sharedBlock is how long the shared read waits for new entries when all
// is quiet. A partition joining or leaving interrupts it (CLIENT
// UNBLOCK); where Redis cannot do that (the embedded Redis of dev),
// sharedBlockPolled bounds how late it notices.
const (
	sharedBlock       = 2 * time.Second
	sharedBlockPolled = 250 * time.Millisecond
)

// shared reads the partitions this worker owns together: one round trip
// writes what the last batch produced, acknowledges what is written and
// reads every partition with one XREADGROUP, and the entries it returns,
// of whichever partitions, are applied as one batch. Under load a read
// thus returns what waits in all of them, and the cost of a round trip
// is shared by more events the busier the worker is; one blocking read
// per partition would bring one or two entries each at any load.
//
// On Redis Cluster one command reads only keys of one hash slot, and
// every partition has a slot of its own: each partition then has its own
// shared read (see Worker.sharedRead), which is the same loop over one
// partition.
//
// A partition joins once runAlone made it clear (claims, retries) and
// leaves when its run stops (its done is closed once what it applied is
// written and acknowledged) or when a batch could not apply all of its
// entries: those go back to runAlone, in order, and the partition joins
// again after them. Per-partition order, fencing, exactly-once apply,
// claims and dead letters are thus those of a partition's own loop.
type shared struct {
	w *Worker

	mu   sync.Mutex
	runs map[int]*partitionRun // joined, not yet taken in by the loop
	// blocked is the CLIENT ID of the loop's connection while it waits in
	// a read (0: it does not wait, or it cannot be unblocked).
	blocked atomic.Int64
	wake    chan struct{}
	done    chan struct{}
}

// part is a partition in the shared read, as the loop keeps it.
type part struct {
	run *partitionRun
	// unacked are entries applied and written, acknowledged in the next
	// round trip; deferred are entries whose writes wait in the loop's
	// deferred writes.
	unacked, deferred []string
	// own: the last round's reply was lost; read this consumer's pending
	// entries first.
	own bool
}

// sharedRead returns the shared read partition p belongs to, started on
// first use.
func (w *Worker) sharedRead(p int) *shared {
	key := 0
	if _, ok := w.c.Redis().(*redis.ClusterClient); ok {
		key = p
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if g := w.reads[key]; g != nil {
		return g
	}
	loops := w.loops
	g := &shared{w: w, runs: map[int]*partitionRun{}, wake: make(chan struct{}, 1), done: make(chan struct{})}
	w.reads[key] = g
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer close(g.done)
		g.loop(loops)
	}()
	return g
}

// join adds run to the shared read.
func (g *shared) join(run *partitionRun) {
	g.mu.Lock()
	g.runs[run.p] = run
	g.mu.Unlock()
	g.nudge()
}

// nudge makes the loop look at its partitions now: a partition joined,
// or one of its runs stopped.
func (g *shared) nudge() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
	if id := g.blocked.Load(); id != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = g.w.c.UnblockClient(ctx, id)
	}
}

func (g *shared) loop(ctx context.Context) {
	w := g.w
	parts := map[int]*part{}
	var deferred *Writes
	// On a Redis server the loop reads on a connection of its own, which
	// another can wake from a blocking read (CLIENT UNBLOCK with its
	// CLIENT ID); a connection that failed once stays failed (go-redis),
	// so a new one replaces it.
	var via redis.Cmdable = w.c.Redis()
	client, canUnblock := w.c.Redis().(*redis.Client)
	var conn *redis.Conn
	clientID := int64(0) // conn's CLIENT ID, 0: unknown
	renew := func() {
		if conn != nil {
			_ = conn.Close()
		}
		conn, clientID = client.Conn(), 0
		via = conn
	}
	if canUnblock {
		renew()
		defer func() { _ = conn.Close() }()
	}
	bo := newBackoff()
	for {
		// Take in the partitions that joined.
		g.mu.Lock()
		for p, run := range g.runs {
			parts[p] = &part{run: run}
			delete(g.runs, p)
		}
		g.mu.Unlock()
		closing := ctx.Err() != nil
		var reading, own []int
		acks := map[int][]string{}
		var leaving []int
		for p, pt := range parts {
			if len(pt.unacked) > 0 {
				acks[p] = pt.unacked
			}
			if closing || pt.run.stopped() {
				leaving = append(leaving, p)
				continue
			}
			if pt.own {
				own = append(own, p)
			} else {
				reading = append(reading, p)
			}
		}
		if len(reading)+len(own) == 0 && deferred == nil && len(acks) == 0 {
			for _, p := range leaving {
				g.leave(parts, p)
			}
			if closing {
				return
			}
			select {
			case <-ctx.Done():
			case <-g.wake:
			}
			continue
		}
		slices.Sort(reading)
		slices.Sort(own)
		block := time.Duration(0)
		if len(leaving) == 0 {
			block = sharedBlockPolled
			if canUnblock && clientID == 0 {
				id, err := conn.ClientID(context.WithoutCancel(ctx)).Result()
				if err != nil {
					canUnblock = false
				} else {
					clientID = id
				}
			}
			if canUnblock {
				block = sharedBlock
				// Published before the wake-up is looked at: a join
				// after this point unblocks the read.
				g.blocked.Store(clientID)
			}
			select {
			case <-g.wake:
				block = 0 // a change waits: take it in after this round
			default:
			}
		}
		round := streams.Round{Consumer: w.id, Acks: acks, New: reading, Own: own, Count: w.cfg.BatchSize, Block: block}
		if deferred != nil {
			round.Writes = func(p redis.Pipeliner) func() error { return deferred.Queue(ctx, p) }
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), block+5*time.Second)
		got, err := w.c.ReadRound(rctx, via, round)
		cancel()
		g.blocked.Store(0)
		if err == nil && got.WritesErr == nil {
			// Written and acknowledged.
			for _, pt := range parts {
				pt.unacked = append(pt.unacked[:0], pt.deferred...)
				pt.deferred = nil
			}
			deferred = nil
		} else {
			if err != nil {
				if conn != nil {
					renew()
				}
				if ctx.Err() == nil && !closing {
					w.log.Warn("read partitions", "err", err)
				}
			}
			// Whether anything of the round happened is unknown: the
			// deferred writes go first, before anything else is applied
			// (acknowledgements are idempotent: sent again next round).
			if !g.flush(ctx, &deferred, parts) {
				for _, p := range leaving {
					g.leave(parts, p)
				}
				if ctx.Err() != nil {
					closing = true
				}
			}
			if err != nil {
				// The read may have been delivered: those partitions
				// read their own pending entries first.
				for _, p := range append(reading, own...) {
					parts[p].own = true
				}
			}
		}
		for _, p := range leaving {
			if err == nil && got.WritesErr == nil || closing {
				g.leave(parts, p)
			}
		}
		if err != nil || closing {
			if !closing {
				bo.Sleep(ctx)
			}
			continue
		}
		bo.Reset()
		for _, p := range own {
			parts[p].own = false
		}
		for p, ids := range got.Gone {
			if pt := parts[p]; pt != nil {
				pt.unacked = append(pt.unacked, ids...)
			}
		}
		if len(got.Entries) > 0 {
			deferred = g.apply(ctx, parts, got.Entries)
		}
	}
}

// flush writes the deferred writes with retries until they are written
// (their entries are then acknowledged with the next round) or ctx ends;
// false when it ended first.
func (g *shared) flush(ctx context.Context, deferred **Writes, parts map[int]*part) bool {
	if *deferred == nil {
		return true
	}
	bo := newBackoff()
	for {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err := (*deferred).Write(wctx)
		cancel()
		if err == nil {
			for _, pt := range parts {
				pt.unacked = append(pt.unacked, pt.deferred...)
				pt.deferred = nil
			}
			*deferred = nil
			return true
		}
		g.w.log.Warn("write applied entries' events", "err", err)
		if !bo.Sleep(ctx) {
			return false
		}
	}
}

// leave takes partition p out of the shared read for good: its run
// stopped, and what it applied is written and acknowledged (or the
// worker is stopping and gives up on it: the entries stay pending and
// their next owner applies them again, which changes nothing twice).
func (g *shared) leave(parts map[int]*part, p int) {
	pt := parts[p]
	if pt == nil {
		return
	}
	delete(parts, p)
	if len(pt.unacked) > 0 || len(pt.deferred) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if len(pt.deferred) == 0 {
			_ = g.w.c.Reader(p, g.w.id).Ack(ctx, pt.unacked...)
		}
		cancel()
	}
	close(pt.run.done)
}

// apply applies the entries one round read, as one batch, and returns
// the writes it deferred to the next round trip. A partition whose
// entries were not all applied goes back to runAlone with the rest, in
// order; a fenced one is given up.
func (g *shared) apply(ctx context.Context, parts map[int]*part, got map[int][]redis.XMessage) *Writes {
	w := g.w
	var entries []BatchEntry
	var ids []string
	rest := map[int][]redis.XMessage{}
	order := make([]int, 0, len(got))
	for p := range got {
		order = append(order, p)
	}
	slices.Sort(order)
	for _, p := range order {
		pt := parts[p]
		if pt == nil {
			continue
		}
		for i, m := range got[p] {
			if slices.Contains(pt.unacked, m.ID) {
				continue // applied and written already (read again after a lost reply)
			}
			env, err := streams.DecodeEnvelope(m.ID, m.Values)
			if err != nil {
				// runAlone dead-letters it, and applies what follows.
				rest[p] = got[p][i:]
				break
			}
			entries = append(entries, BatchEntry{Partition: p, Token: pt.run.token, Env: env})
			ids = append(ids, m.ID)
		}
	}
	var res BatchResult
	if len(entries) > 0 {
		start := time.Now()
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		res = w.safeApplyBatch(actx, entries, BatchOptions{
			Proceed:         func(p int) bool { return w.leaseValidNow(parts[p].run) },
			DeferLastWrites: len(rest) == 0,
		})
		cancel()
		elapsed := time.Since(start).Seconds()
		for i, e := range entries {
			if !res.Applied[i] {
				continue
			}
			w.observe(e.Env, res.Outcomes[i], elapsed)
			pt := parts[e.Partition]
			if res.Deferred != nil {
				pt.deferred = append(pt.deferred, ids[i])
			} else {
				pt.unacked = append(pt.unacked, ids[i])
			}
		}
	}
	// Partitions that stopped: the entries not applied, then those of the
	// read the batch never saw, in stream order.
	for p, err := range res.Stopped {
		pt := parts[p]
		if errors.Is(err, ErrFenced) {
			w.log.Warn("fenced: a newer lease token wrote to this room; giving the partition up", "partition", p)
			pt.run.fenced.Store(true)
			delete(parts, p)
			unacked := pt.unacked
			go func() {
				actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_ = w.c.Reader(p, w.id).Ack(actx, unacked...)
				cancel()
				w.abandon(pt.run)
				close(pt.run.done)
			}()
			continue
		}
		if !errors.Is(err, ErrStopped) {
			w.log.Debug("batch stopped early; applying the rest alone", "partition", p, "err", err)
		}
		var left []redis.XMessage
		for i, e := range entries {
			if e.Partition == p && !res.Applied[i] {
				left = append(left, got[p][indexOf(got[p], ids[i])])
			}
		}
		rest[p] = append(left, rest[p]...)
	}
	for p, left := range rest {
		pt := parts[p]
		if pt == nil {
			continue
		}
		delete(parts, p)
		unacked := pt.unacked
		w.wg.Add(1)
		go func() { defer w.wg.Done(); w.runAlone(pt.run, unacked, left) }()
	}
	return res.Deferred
}

func indexOf(msgs []redis.XMessage, id string) int {
	for i, m := range msgs {
		if m.ID == id {
			return i
		}
	}
	return -1
}
