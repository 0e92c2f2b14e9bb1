package workers

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/streams"
)

// round runs one round trip: the writes of the wave applied last, the
// acknowledgements of what is written, the scripts of cur's next wave,
// and a read of every partition (while no batch is in hand, or with its
// last wave). false when it failed.
func (l *loopState) round(ctx context.Context, closing bool) bool {
	w, g := l.w, l.g
	if l.cur == nil && len(l.next) > 0 {
		l.begin()
	}
	queue := l.cur != nil && l.cur.more() && (l.chained || len(l.writes) == 0)
	// The next read rides with a batch's last wave while entries flow
	// (the last read found more than one, or found some without
	// waiting); otherwise it waits for the wave's writes, and blocks.
	read := !closing && (l.cur == nil || queue && l.cur.next == l.cur.waves-1 && l.flowing)
	r := streams.Round{Consumer: w.id, Acks: map[int][]string{}, Count: w.cfg.BatchSize}
	for p, pt := range l.parts {
		if len(pt.unacked) > 0 {
			r.Acks[p] = pt.unacked
		}
		if !read || pt.leaving || pt.run.stopped() || len(l.next[p]) > 0 {
			continue
		}
		if pt.own {
			r.Own = append(r.Own, p)
		} else {
			r.New = append(r.New, p)
		}
	}
	slices.Sort(r.New)
	slices.Sort(r.Own)
	if read && !queue && len(r.Own) == 0 && !l.leaving() && !l.flowing {
		// A blocking read costs Redis far more than one that does not
		// wait (it registers on every partition's stream, and is run
		// again when an entry arrives): while entries flow the loop
		// polls instead, and blocks once a poll and a short linger found
		// nothing.
		r.Block = l.block()
	}
	writes := l.writes
	if len(writes) > 0 || queue {
		r.Writes = func(p redis.Pipeliner) func() error {
			var cmds []redis.Cmder
			if len(writes) > 0 {
				cmds = w.applier.queueWrites(ctx, p, writes)
			}
			if queue {
				l.cur.queue(ctx, p)
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
	}
	if len(r.New)+len(r.Own)+len(r.Acks) == 0 && r.Writes == nil {
		// Nothing to send (partitions on their way out): wait a moment.
		select {
		case <-ctx.Done():
		case <-g.wake:
		case <-time.After(50 * time.Millisecond):
		}
		return true
	}
	if r.Block > 0 && l.clientID != 0 {
		// Published before the wake-up is looked at: a join after this
		// point unblocks the read.
		g.blocked.Store(l.clientID)
		select {
		case <-g.wake:
			r.Block = 0 // a change waits: take it in after this round
		default:
		}
	}
	// Redis runs the writes before the read: when the read may wait for
	// entries, they are written when the round trip leaves, not when it
	// returns.
	var sent time.Time
	if r.Block > 0 && len(writes) > 0 {
		sent = time.Now()
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.Block+5*time.Second)
	got, err := w.c.ReadRound(rctx, l.via, r)
	cancel()
	g.blocked.Store(0)
	if err != nil || got.WritesErr != nil {
		if err != nil {
			if l.conn != nil {
				l.renew()
			}
			if !closing {
				w.log.Warn("read partitions", "err", err)
			}
		}
		// The read may have been delivered, or was and is not taken:
		// those partitions read their own pending entries next.
		for _, p := range append(r.New, r.Own...) {
			l.parts[p].own = true
		}
		if queue {
			l.cur.retry() // its results are unknown: applied again, each returns its room's cached result
		}
		// Whether the writes happened is unknown: they go first,
		// before anything else is applied (acknowledgements are
		// idempotent: sent again next round).
		return l.flush(ctx) && false
	}
	// One clock read times what the round trip completed: the writes of
	// the last wave (applied, unless the read waited) and the entries
	// read (queued).
	now := time.Now()
	for p, ids := range r.Acks {
		pt := l.parts[p]
		pt.unacked = pt.unacked[len(ids):]
	}
	if len(writes) > 0 {
		if sent.IsZero() {
			sent = now
		}
		w.m.written(writes, sent)
		l.written()
	}
	for _, p := range r.Own {
		l.parts[p].own = false
	}
	for p, ids := range got.Gone {
		if pt := l.parts[p]; pt != nil {
			pt.unacked = append(pt.unacked, ids...)
		}
	}
	if queue {
		l.finishWave(ctx)
	}
	if read {
		n := 0
		for _, msgs := range got.Entries {
			n += len(msgs)
		}
		switch {
		case n > 1 || n > 0 && r.Block == 0:
			l.flowing, l.lingered = true, false
		case n == 0 && l.flowing && !l.lingered && l.cur == nil && len(l.writes) == 0:
			// Nothing yet while entries were flowing: wait a moment and
			// poll again before blocking.
			l.lingered = true
			lingerTimer := time.NewTimer(sharedLinger)
			select {
			case <-ctx.Done():
			case <-g.wake:
			case <-lingerTimer.C:
			}
			lingerTimer.Stop()
		case n == 0 && l.flowing && l.lingered, n == 1 && r.Block > 0:
			l.flowing, l.lingered = false, false
		}
	}
	if len(got.Entries) > 0 {
		l.take(got.Entries, len(r.Own) > 0)
		l.readAt = now
	}
	return true
}

// block is how long the read may wait for entries: long where another
// connection can wake it, short where it cannot (the embedded Redis of
// dev).
func (l *loopState) block() time.Duration {
	if l.canUnblock && l.clientID == 0 {
		id, err := l.conn.ClientID(context.Background()).Result()
		if err != nil {
			l.canUnblock = false
		} else {
			l.clientID = id
		}
	}
	if l.canUnblock {
		return sharedBlock
	}
	return sharedBlockPolled
}

// written moves the entries whose writes went through to the
// acknowledgements of the next round.
func (l *loopState) written() {
	for _, pt := range l.parts {
		pt.unacked = append(pt.unacked, pt.written...)
		pt.written = nil
	}
	l.writes = nil
}

// flush writes the pending writes with retries until they are written
// or ctx ends; false when it ended first.
func (l *loopState) flush(ctx context.Context) bool {
	if len(l.writes) == 0 {
		return true
	}
	bo := newBackoff()
	for {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err := l.w.applier.commit(wctx, l.writes)
		cancel()
		if err == nil {
			l.w.m.written(l.writes, time.Now())
			l.written()
			return true
		}
		l.w.log.Warn("write applied entries' events", "err", err)
		if !bo.Sleep(ctx) {
			return false
		}
	}
}

// take keeps entries read for the next batch. After a lost reply (own),
// the entries read again that are in hand already are skipped (entry ids
// are those of their partition's stream).
func (l *loopState) take(got map[int][]redis.XMessage, own bool) {
	var inHand map[int]map[string]bool
	if own {
		inHand = map[int]map[string]bool{}
		add := func(p int, id string) {
			if inHand[p] == nil {
				inHand[p] = map[string]bool{}
			}
			inHand[p][id] = true
		}
		for p, pt := range l.parts {
			for _, id := range pt.unacked {
				add(p, id)
			}
			for _, id := range pt.written {
				add(p, id)
			}
		}
		if l.cur != nil {
			for i, e := range l.cur.entries {
				add(e.Partition, l.curMsgs[i].ID)
			}
		}
	}
	if l.next == nil {
		l.next = map[int][]redis.XMessage{}
	}
	for p, msgs := range got {
		pt := l.parts[p]
		if pt == nil || pt.leaving {
			continue
		}
		for _, m := range msgs {
			if !inHand[p][m.ID] {
				l.next[p] = append(l.next[p], m)
			}
		}
	}
}

// begin starts the next batch with the entries read.
func (l *loopState) begin() {
	w := l.w
	order := make([]int, 0, len(l.next))
	for p := range l.next {
		order = append(order, p)
	}
	slices.Sort(order)
	var entries []BatchEntry
	var msgs []redis.XMessage
	for _, p := range order {
		pt := l.parts[p]
		for i, m := range l.next[p] {
			env, err := streams.DecodeEnvelope(m.ID, m.Values)
			if err != nil {
				// runAlone dead-letters it, and applies what follows.
				pt.stopped, pt.leaving = l.next[p][i:], true
				break
			}
			w.m.latency.Queued.Since(env.Accepted, l.readAt)
			entries = append(entries, BatchEntry{Partition: p, Token: pt.run.token, Env: env})
			msgs = append(msgs, m)
		}
	}
	l.next = nil
	if len(entries) == 0 {
		return
	}
	l.cur = w.applier.newBatch(entries, BatchOptions{Proceed: func(p int) bool { return w.leaseValidNow(l.parts[p].run) }})
	l.curMsgs, l.start = msgs, time.Now()
	l.stopped() // durable mode stops every partition at once
	if !l.cur.more() {
		l.cur, l.curMsgs = nil, nil
	}
}

// finishWave reads the results of the wave cur queued.
func (l *loopState) finishWave(ctx context.Context) {
	w, b := l.w, l.cur
	es, done, missingCode := b.finish()
	if missingCode {
		if err := w.applier.scripts.load(ctx, w.c.Redis()); err != nil {
			w.log.Warn("load the room scripts", "err", err)
		}
		b.retry()
		return
	}
	b.applied(es, done)
	elapsed := time.Since(l.start).Seconds()
	for j, i := range done {
		e := b.entries[i]
		w.observe(e.Env, es[j].outcome, elapsed)
		pt := l.parts[e.Partition]
		pt.written = append(pt.written, l.curMsgs[i].ID)
	}
	l.writes = es
	l.stopped()
	if !b.more() {
		l.cur, l.curMsgs = nil, nil
	}
}

// stopped marks the partitions cur stopped as leaving, with the entries
// they did not apply, then those read after them.
func (l *loopState) stopped() {
	b := l.cur
	for p, err := range b.res.Stopped {
		pt := l.parts[p]
		if pt == nil || pt.leaving {
			continue
		}
		pt.leaving = true
		if errors.Is(err, ErrFenced) {
			l.w.log.Warn("fenced: a newer lease token wrote to this room; giving the partition up", "partition", p)
			pt.run.fenced.Store(true)
			pt.fenced = true
		} else if !errors.Is(err, ErrStopped) {
			l.w.log.Debug("batch stopped early; applying the rest alone", "partition", p, "err", err)
		}
		var rest []redis.XMessage
		for i, e := range b.entries {
			if e.Partition == p && !b.res.Applied[i] {
				rest = append(rest, l.curMsgs[i])
			}
		}
		pt.stopped = append(rest, l.next[p]...)
		delete(l.next, p)
	}
}
