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

// partitionRun is the applying loop of one partition this worker leases.
type partitionRun struct {
	p      int
	token  int64
	cancel context.CancelFunc
	done   chan struct{}
	// validUntil (unix ms, on the worker's clock w.now, as is every
	// reading of it) is when the lease expires unless renewed; the loop
	// applies nothing past it until the renewer extends it.
	validUntil atomic.Int64
	// fenced is set when a room refused this run's token: a newer token
	// exists (another owner, or an epoch that went back in a failover).
	fenced atomic.Bool
}

func (r *partitionRun) stop() { r.cancel() }

type verdict int

const (
	verdictApplied verdict = iota
	deadLettered
	stopped
)

// runPartition applies partition run.p until ctx ends: first the entries
// earlier owners left pending, in order, then new ones.
func (w *Worker) runPartition(ctx context.Context, run *partitionRun) {
	defer close(run.done)
	defer func() {
		if run.fenced.Load() && ctx.Err() == nil {
			w.abandon(run)
		}
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
	claiming := true
	// unacked are entries applied and written, not acknowledged yet: they
	// go with the next read, in its round trip (XACK is idempotent: a
	// failed round trip keeps them for the next one). pending are the
	// writes of the last batch's last wave, and pendingIDs its entries:
	// they go first in the next read's round trip, and those entries are
	// acknowledged with the read after (only once they are written).
	var (
		unacked    []string
		pending    *Writes
		pendingIDs []string
	)
	// flushPending writes pending now; false when ctx ended first.
	flushPending := func() bool {
		if pending == nil {
			return true
		}
		bo := newBackoff()
		for {
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			err := pending.Write(wctx)
			cancel()
			if err == nil {
				unacked, pending, pendingIDs = append(unacked, pendingIDs...), nil, nil
				return true
			}
			log.Warn("write applied entries' events", "err", err)
			if !bo.Sleep(ctx) {
				return false
			}
		}
	}
	defer func() {
		// Written before acknowledged; if they cannot be written, the
		// entries stay pending and the next owner applies them again.
		if pending != nil {
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if pending.Write(wctx) == nil {
				unacked = append(unacked, pendingIDs...)
			}
			cancel()
		}
		if len(unacked) > 0 {
			w.ack(ctx, run, r, unacked)
		}
	}()
	for ctx.Err() == nil {
		var (
			msgs []redis.XMessage
			err  error
		)
		if claiming {
			var waiting bool
			msgs, waiting, err = r.ClaimStale(ctx, w.cfg.ClaimMinIdle, w.cfg.BatchSize)
			if err == nil && len(msgs) == 0 {
				if !waiting {
					claiming = false
					continue
				}
				streams.SleepCtx(ctx, 100*time.Millisecond)
				continue
			}
			if len(msgs) > 0 {
				w.m.claimed.Add(float64(len(msgs)))
				log.Info("claimed pending entries", "count", len(msgs), "first", msgs[0].ID)
			}
		} else {
			var before func(redis.Pipeliner) func() error
			if pending != nil {
				before = func(p redis.Pipeliner) func() error { return pending.Queue(ctx, p) }
			}
			var werr error
			msgs, werr, err = r.ReadNewAck(ctx, unacked, pendingIDs, before, w.cfg.BatchSize, 2*time.Second)
			if err == nil {
				unacked = unacked[:0]
			}
			if pending != nil {
				if werr == nil && err == nil {
					unacked, pending, pendingIDs = append(unacked, pendingIDs...), nil, nil
				} else if !flushPending() {
					return
				}
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("read partition", "err", err)
			bo.Sleep(ctx)
			continue
		}
		bo.Reset()
		ids, later, laterIDs, ok := w.process(ctx, run, msgs, !claiming)
		unacked = append(unacked, ids...)
		pending, pendingIDs = later, laterIDs
		if claiming || !ok {
			// Claimed entries are acknowledged at once: the next call
			// claims, it does not read.
			if !flushPending() {
				return
			}
			w.ack(ctx, run, r, unacked)
			unacked = unacked[:0]
		}
		if !ok {
			return
		}
	}
}

// process applies msgs and returns the ids of those applied (to
// acknowledge). ok is false when the loop must stop (lease lost or
// released); the entries in hand are always finished first.
//
// Entries are applied together (Applier.ApplyBatch: one round trip for
// their scripts, one for what they produce); whatever the batch leaves
// (an entry that failed, a lease that needs renewing, durable mode) is
// applied one entry at a time with retries and dead letters, in order.
//
// With later set, the writes of a batch applied whole may be returned
// instead of written (laterIDs are their entries), for the caller's next
// round trip.
func (w *Worker) process(ctx context.Context, run *partitionRun, msgs []redis.XMessage, later bool) (ids []string, pending *Writes, laterIDs []string, ok bool) {
	ids = make([]string, 0, len(msgs))
	envs := make([]*streams.Envelope, 0, len(msgs))
	kept := make([]redis.XMessage, 0, len(msgs))
	for _, m := range msgs {
		env, err := streams.DecodeEnvelope(m.ID, m.Values)
		if err != nil {
			// No room to keep in order with: dead-lettered now.
			switch w.deadLetter(ctx, run, m, err, 1) {
			case deadLettered:
				ids = append(ids, m.ID)
			case stopped:
				return ids, nil, nil, false
			}
			continue
		}
		envs, kept = append(envs, env), append(kept, m)
	}
	if len(envs) == 0 {
		return ids, nil, nil, true
	}
	if !w.leaseValid(ctx, run) {
		return ids, nil, nil, false
	}
	start := time.Now()
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	applied, outs, pending, err := w.safeApplyBatch(actx, run, envs, later)
	cancel()
	elapsed := time.Since(start).Seconds()
	for i, env := range envs {
		if applied[i] {
			w.observe(env, outs[i], elapsed)
			if pending != nil {
				laterIDs = append(laterIDs, kept[i].ID)
			} else {
				ids = append(ids, kept[i].ID)
			}
		}
	}
	if pending != nil {
		// Every entry applied (ApplyBatch defers only then); the earlier
		// waves' entries are written already, acknowledging them with
		// the last wave's is one slice fewer to keep.
		return ids, pending, laterIDs, true
	}
	if errors.Is(err, ErrFenced) {
		w.log.Warn("fenced: a newer lease token wrote to this room; giving the partition up", "partition", run.p)
		run.fenced.Store(true)
		return ids, nil, nil, false
	}
	if err != nil && !errors.Is(err, ErrStopped) {
		w.log.Debug("batch stopped early; applying the rest one by one", "partition", run.p, "err", err)
	}
	for i, m := range kept {
		if applied[i] {
			continue
		}
		if !w.leaseValid(ctx, run) {
			return ids, nil, nil, false
		}
		switch w.applyEntry(ctx, run, envs[i], m) {
		case verdictApplied:
			ids = append(ids, m.ID)
		case stopped:
			return ids, nil, nil, false
		}
	}
	return ids, nil, nil, true
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
			w.observe(env, out, time.Since(start).Seconds())
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

// safeApplyBatch is safeApply for a batch: a panic fails the batch, whose
// entries are then applied one by one (and the bad one dead-lettered).
func (w *Worker) safeApplyBatch(ctx context.Context, run *partitionRun, envs []*streams.Envelope, later bool) (applied []bool, outs []Outcome, pending *Writes, err error) {
	defer func() {
		if p := recover(); p != nil {
			w.log.Error("panic applying a batch; applying its entries one by one", "partition", run.p, "panic", p)
			if applied == nil {
				applied, outs = make([]bool, len(envs)), make([]Outcome, len(envs))
			}
			err = fmt.Errorf("%w: panic: %v", ErrPermanent, p)
		}
	}()
	return w.applier.ApplyBatch(ctx, run.p, run.token, envs, func() bool { return w.now().UnixMilli() <= run.validUntil.Load() }, later)
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
