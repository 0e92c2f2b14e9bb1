package workers

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// sharedBlock is how long the shared read waits for new entries when all
// is quiet. A partition joining or leaving interrupts it (CLIENT
// UNBLOCK); where Redis cannot do that (the embedded Redis of dev),
// sharedBlockPolled bounds how late it notices.
const (
	sharedBlock       = 2 * time.Second
	sharedBlockPolled = 250 * time.Millisecond
	// sharedLinger is how long the loop waits before polling again when
	// a poll found nothing while entries were flowing.
	sharedLinger = 250 * time.Microsecond
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
	// round trip; written are entries whose writes go in the next round
	// trip, acknowledged after it.
	unacked, written []string
	// own: the last round's reply was lost; read this consumer's pending
	// entries first.
	own bool
	// stopped holds, once the partition stopped in a batch, the entries
	// it did not apply (in stream order): they go back to runAlone once
	// what it applied is written. fenced: it is given up instead.
	stopped []redis.XMessage
	leaving bool
	fenced  bool
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
	l := &loopState{g: g, w: g.w, parts: map[int]*part{}}
	// On a Redis server the loop reads on a connection of its own, which
	// another can wake from a blocking read (CLIENT UNBLOCK with its
	// CLIENT ID); a connection that failed once stays failed (go-redis),
	// so a new one replaces it. There the scripts of a wave also ride in
	// the round trip that writes the previous wave: one connection runs
	// commands in order. On Redis Cluster a round trip spans nodes, which
	// keep no order between them: a wave's scripts wait for the previous
	// wave's writes.
	l.via = g.w.c.Redis()
	client, standalone := g.w.c.Redis().(*redis.Client)
	l.chained, l.canUnblock = standalone, standalone
	if standalone {
		l.client = client
		l.renew()
		defer func() { _ = l.conn.Close() }()
	}
	bo := newBackoff()
	for {
		g.mu.Lock()
		for p, run := range g.runs {
			l.parts[p] = &part{run: run}
			delete(g.runs, p)
		}
		g.mu.Unlock()
		closing := ctx.Err() != nil
		if closing && l.cur == nil {
			// What is in hand is written and acknowledged first.
			l.next = nil
		}
		l.retire(closing)
		if len(l.parts) == 0 && l.cur == nil && len(l.next) == 0 {
			if closing {
				return
			}
			select {
			case <-ctx.Done():
			case <-g.wake:
			}
			continue
		}
		ok := l.round(ctx, closing)
		if closing {
			if !ok {
				// Redis away while stopping: what is not written stays
				// pending; the partitions' next owners apply it again.
				for p := range l.parts {
					l.drop(p)
				}
				return
			}
			continue
		}
		if ok {
			bo.Reset()
		} else {
			bo.Sleep(ctx)
		}
	}
}

// loopState is what the shared read's loop keeps between round trips.
type loopState struct {
	g     *shared
	w     *Worker
	parts map[int]*part
	// cur is the batch being applied, a wave per round trip; curMsgs are
	// its entries as read (same order).
	cur     *batch
	curMsgs []redis.XMessage
	// flowing: the last read found entries without waiting for them, or
	// more than one (see round); lingered: a poll found nothing and the
	// loop waited sharedLinger once.
	flowing, lingered bool
	// next are entries read, not applied yet (the batch after cur).
	next map[int][]redis.XMessage
	// writes are the effects of the wave applied last, written in the
	// next round trip (each partition's written holds their entries).
	writes []*effects
	start  time.Time // when cur started, for the apply time metric
	readAt time.Time // when next was read, for the queued hop

	via        redis.Cmdable
	client     *redis.Client
	conn       *redis.Conn
	clientID   int64 // conn's CLIENT ID, 0: unknown
	chained    bool  // a wave's scripts go with the previous wave's writes
	canUnblock bool
}

func (l *loopState) renew() {
	if l.conn != nil {
		_ = l.conn.Close()
	}
	l.conn, l.clientID = l.client.Conn(), 0
	l.via = l.conn
}

// busy tells whether partition p has entries or writes in hand.
func (l *loopState) busy(p int) bool {
	pt := l.parts[p]
	if len(pt.written) > 0 || len(l.next[p]) > 0 {
		return true
	}
	if l.cur != nil {
		for _, e := range l.cur.entries {
			if e.Partition == p {
				return true
			}
		}
	}
	return false
}

// retire hands partitions that stopped in a batch back to runAlone (or
// gives up fenced ones), and lets partitions whose run stopped leave,
// once what they applied is written.
func (l *loopState) retire(closing bool) {
	for p, pt := range l.parts {
		switch {
		case pt.leaving && len(pt.written) == 0:
			delete(l.parts, p)
			run, unacked, rest := pt.run, pt.unacked, pt.stopped
			w := l.w
			if pt.fenced {
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					_ = w.c.Reader(p, w.id).Ack(ctx, unacked...)
					cancel()
					w.abandon(run)
					close(run.done)
				}()
				continue
			}
			w.wg.Add(1)
			go func() { defer w.wg.Done(); w.runAlone(run, unacked, rest) }()
		case (closing || pt.run.stopped()) && !pt.leaving:
			// Entries read and not applied stay pending: the partition's
			// next owner claims them.
			delete(l.next, p)
			if !l.busy(p) && len(pt.unacked) == 0 {
				delete(l.parts, p)
				close(pt.run.done)
			}
		}
	}
}

// leaving tells whether a partition waits to be handed back or to leave:
// the loop must not wait in a read then.
func (l *loopState) leaving() bool {
	for _, pt := range l.parts {
		if pt.leaving || pt.run.stopped() {
			return true
		}
	}
	return false
}

// drop lets partition p go without writing what it has in hand.
func (l *loopState) drop(p int) {
	if pt := l.parts[p]; pt != nil {
		delete(l.parts, p)
		close(pt.run.done)
	}
}
