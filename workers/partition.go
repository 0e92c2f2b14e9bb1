package workers

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// partitionRun is one partition this worker leases. Its entries are read
// by the worker's shared read (shared.go), together with the other
// partitions it owns; what needs one partition's attention alone --
// claiming the entries an earlier owner left pending, applying entries
// one by one with retries and dead letters after a batch stopped, every
// entry in durable mode -- runs on its own goroutine (runAlone), which
// hands the partition back to the shared read once it is clear.
type partitionRun struct {
	p      int
	token  int64
	ctx    context.Context // ends when the run must stop (lease lost or released)
	cancel context.CancelFunc
	// done is closed once the run stopped and what it applied is written
	// and acknowledged: its lease may be given up.
	done chan struct{}
	// validUntil (unix ms, on the worker's clock w.now, as is every
	// reading of it) is when the lease expires unless renewed; nothing
	// of the partition is applied past it until the renewer extends it.
	validUntil atomic.Int64
	// fenced is set when a room refused this run's token: a newer token
	// exists (another owner, or an epoch that went back in a failover).
	fenced atomic.Bool
	// onStop tells the shared reads that a run stopped (they may be
	// waiting in a read).
	onStop func()
}

func (r *partitionRun) stop() {
	r.cancel()
	if r.onStop != nil {
		r.onStop()
	}
}

// stopped tells whether the run must stop.
func (r *partitionRun) stopped() bool { return r.ctx.Err() != nil }

type verdict int

const (
	verdictApplied verdict = iota
	deadLettered
	stopped
)

// runAlone works on one partition outside the shared read: it
// acknowledges unacked (entries the shared read applied and wrote),
// applies rest (entries the shared read could not apply, in stream order)
// one by one as needed, then claims and applies, in order, what earlier
// owners left pending. Once the partition is clear it joins the shared
// read (which from then on owns run.done); when the run stops first, it
// closes run.done itself.
func (w *Worker) runAlone(run *partitionRun, unacked []string, rest []redis.XMessage) {
	ctx := run.ctx
	joined := false
	defer func() {
		if joined {
			return
		}
		if run.fenced.Load() && ctx.Err() == nil {
			w.abandon(run)
		}
		close(run.done)
	}()
	r := w.c.Reader(run.p, w.id)
	log := w.log.With("partition", run.p, "token", run.token)
	bo := newBackoff()
	for ctx.Err() == nil {
		if err := r.EnsureGroup(ctx); err != nil {
			log.Warn("create consumer group", "err", err)
			bo.Sleep(ctx)
			continue
		}
		break
	}
	if len(unacked) > 0 {
		w.ack(ctx, run, r, unacked)
	}
	if len(rest) > 0 {
		// The shared read timed their queued hop already.
		ids, ok := w.process(ctx, run, rest, time.Time{})
		w.ack(ctx, run, r, ids)
		if !ok {
			return
		}
	}
	for ctx.Err() == nil {
		msgs, waiting, err := r.ClaimStale(ctx, w.cfg.ClaimMinIdle, w.cfg.BatchSize)
		if err != nil {
			log.Warn("claim pending entries", "err", err)
			bo.Sleep(ctx)
			continue
		}
		bo.Reset()
		if len(msgs) == 0 {
			if waiting {
				streams.SleepCtx(ctx, 100*time.Millisecond)
				continue
			}
			break
		}
		w.m.claimed.Add(float64(len(msgs)))
		log.Info("claimed pending entries", "count", len(msgs), "first", msgs[0].ID)
		ids, ok := w.process(ctx, run, msgs, time.Now())
		// Claimed entries are acknowledged at once: the next call
		// claims, it does not read.
		w.ack(ctx, run, r, ids)
		if !ok {
			return
		}
	}
	if ctx.Err() == nil {
		joined = true
		w.sharedRead(run.p).join(run)
	}
}

// process applies msgs of run's partition, in order, and returns the ids
// of those applied (to acknowledge); readAt, unless zero, is when they
// were read (their queued hop). ok is false when the run must stop
// (lease lost or released, fenced); the entries in hand are finished
// first.
//
// Entries are applied together (Applier.ApplyBatch: one round trip for
// their scripts, one for what they produce); whatever the batch leaves
// (an entry that failed, a lease that needs renewing, durable mode) is
// applied one entry at a time with retries and dead letters, in order.
func (w *Worker) process(ctx context.Context, run *partitionRun, msgs []redis.XMessage, readAt time.Time) (ids []string, ok bool) {
	ids = make([]string, 0, len(msgs))
	entries := make([]BatchEntry, 0, len(msgs))
	kept := make([]redis.XMessage, 0, len(msgs))
	for _, m := range msgs {
		env, err := streams.DecodeEnvelope(m.ID, m.Values)
		if err != nil {
			// No room to keep in order with: dead-lettered now.
			switch w.deadLetter(ctx, run, m, err, 1) {
			case deadLettered:
				ids = append(ids, m.ID)
			case stopped:
				return ids, false
			}
			continue
		}
		if !readAt.IsZero() {
			w.m.latency.Queued.Since(env.Accepted, readAt)
		}
		entries, kept = append(entries, BatchEntry{Partition: run.p, Token: run.token, Env: env}), append(kept, m)
	}
	if len(entries) == 0 {
		return ids, true
	}
	if !w.leaseValid(ctx, run) {
		return ids, false
	}
	start := time.Now()
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	res := w.safeApplyBatch(actx, entries, BatchOptions{Proceed: func(int) bool { return w.leaseValidNow(run) }})
	cancel()
	now := time.Now()
	elapsed := now.Sub(start).Seconds()
	for i, e := range entries {
		if res.Applied[i] {
			w.observe(e.Env, res.Outcomes[i], elapsed)
			w.m.latency.Applied.Since(e.Env.Accepted, now)
			ids = append(ids, kept[i].ID)
		}
	}
	err := res.Stopped[run.p]
	if errors.Is(err, ErrFenced) {
		w.log.Warn("fenced: a newer lease token wrote to this room; giving the partition up", "partition", run.p)
		run.fenced.Store(true)
		return ids, false
	}
	if err != nil && !errors.Is(err, ErrStopped) {
		w.log.Debug("batch stopped early; applying the rest one by one", "partition", run.p, "err", err)
	}
	for i, m := range kept {
		if res.Applied[i] {
			continue
		}
		if !w.leaseValid(ctx, run) {
			return ids, false
		}
		switch w.applyEntry(ctx, run, entries[i].Env, m) {
		case verdictApplied:
			ids = append(ids, m.ID)
		case stopped:
			return ids, false
		}
	}
	return ids, true
}

// leaseValidNow tells whether run's lease is valid now.
func (w *Worker) leaseValidNow(run *partitionRun) bool {
	return w.now().UnixMilli() <= run.validUntil.Load()
}

// leaseValid waits while the lease is past its expiry unless renewed
// (Redis unreachable, say): nothing is applied until the renewer extends
// it. False when the lease is lost or ctx ended.
func (w *Worker) leaseValid(ctx context.Context, run *partitionRun) bool {
	for w.now().UnixMilli() > run.validUntil.Load() {
		if run.fenced.Load() || !streams.SleepCtx(ctx, 50*time.Millisecond) {
			return false
		}
	}
	return ctx.Err() == nil
}

func (w *Worker) observe(env *streams.Envelope, out Outcome, seconds float64) {
	w.m.applied.WithLabelValues(env.Type, out.Status).Inc()
	w.m.applySeconds.WithLabelValues(env.Type).Observe(seconds)
	for _, ev := range out.Events {
		w.m.eventsOut.WithLabelValues(schemas.MetricName(ev)).Inc()
	}
}

// ack acknowledges applied entries now.
func (w *Worker) ack(ctx context.Context, run *partitionRun, r *streams.Reader, ids []string) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := r.Ack(actx, ids...); err != nil {
		// Not fatal: the entries stay pending and their redelivery is
		// recognised as already applied.
		w.log.Warn("ack entries", "partition", run.p, "count", len(ids), "err", err)
	}
}

// applyEntry applies one entry, retrying transient failures without limit
// and others up to MaxAttempts before dead-lettering the entry.
func (w *Worker) applyEntry(ctx context.Context, run *partitionRun, env *streams.Envelope, m redis.XMessage) verdict {
	bo := newBackoff()
	attempts := 0
	for {
		start := time.Now()
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		out, err := w.safeApply(actx, run, env)
		cancel()
		if err == nil {
			now := time.Now()
			w.observe(env, out, now.Sub(start).Seconds())
			w.m.latency.Applied.Since(env.Accepted, now)
			return verdictApplied
		}
		if errors.Is(err, ErrFenced) {
			w.log.Warn("fenced: a newer lease token wrote to this room; giving the partition up", "partition", run.p, "entry", m.ID)
			run.fenced.Store(true)
			return stopped
		}
		if streams.IsUnavailable(err) && !errors.Is(err, ErrPermanent) {
			w.log.Warn("apply: Redis unavailable, retrying", "partition", run.p, "entry", m.ID, "err", err)
			if !bo.Sleep(ctx) {
				return stopped
			}
			continue
		}
		attempts++
		w.m.retries.Inc()
		w.log.Error("apply failed", "partition", run.p, "entry", m.ID, "type", env.Type, "attempt", attempts, "err", err)
		if attempts >= w.cfg.MaxAttempts || errors.Is(err, ErrPermanent) {
			return w.deadLetter(ctx, run, m, err, int64(attempts))
		}
		if !bo.Sleep(ctx) {
			return stopped
		}
	}
}

// safeApply turns a panic in a handler into an error, so one bad entry
// cannot take the worker down.
func (w *Worker) safeApply(ctx context.Context, run *partitionRun, env *streams.Envelope) (Outcome, error) {
	return SafeApply(ctx, w.applier, run.p, run.token, env)
}

// SafeApply applies one entry with a and turns a panic of a handler into
// an ErrPermanent failure of that entry (with the stack), the way the
// workers and the audit package both apply entries.
func SafeApply(ctx context.Context, a *Applier, p int, token int64, env *streams.Envelope) (out Outcome, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: panic: %v\n%s", ErrPermanent, v, debug.Stack())
		}
	}()
	return a.Apply(ctx, p, token, env)
}

// safeApplyBatch is ApplyBatch turning a panic into a stop of every
// partition of the batch, whose entries are then applied one by one (and
// the bad one dead-lettered).
func (w *Worker) safeApplyBatch(ctx context.Context, entries []BatchEntry, opts BatchOptions) (res BatchResult) {
	defer func() {
		if v := recover(); v != nil {
			w.log.Error("panic applying a batch; applying its entries one by one", "panic", v)
			res = BatchResult{Applied: make([]bool, len(entries)), Outcomes: make([]Outcome, len(entries)), Stopped: map[int]error{}}
			for _, e := range entries {
				res.Stopped[e.Partition] = fmt.Errorf("%w: panic: %v", ErrPermanent, v)
			}
		}
	}()
	return w.applier.ApplyBatch(ctx, entries, opts)
}

func (w *Worker) deadLetter(ctx context.Context, run *partitionRun, m redis.XMessage, cause error, attempts int64) verdict {
	bo := newBackoff()
	for {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err := w.c.DeadLetter(dctx, run.p, m, cause, attempts, w.now())
		cancel()
		if err == nil {
			w.m.deadLetters.Inc()
			w.log.Error("entry moved to dead letters", "partition", run.p, "entry", m.ID, "attempts", attempts, "err", cause)
			return deadLettered
		}
		w.log.Warn("write dead letter", "partition", run.p, "entry", m.ID, "err", err)
		if !bo.Sleep(ctx) {
			return stopped
		}
	}
}

// newBackoff is the workers' delay between retries of Redis work: 50 ms
// doubling to 2 s.
func newBackoff() *streams.Backoff { return streams.NewBackoff(50*time.Millisecond, 2*time.Second) }
