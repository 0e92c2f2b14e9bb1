package workers

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/streams"
)

// partitionRun is the applying loop of one partition this worker leases.
type partitionRun struct {
	p      int
	token  int64
	cancel context.CancelFunc
	done   chan struct{}
	// validUntil (unix ms) is when the lease expires unless renewed; the
	// loop applies nothing past it until the renewer extends it.
	validUntil atomic.Int64
	// fenced is set when a room refused this run's token: a newer token
	// exists (another owner, or an epoch that went back in a failover).
	fenced atomic.Bool
}

func (r *partitionRun) stop() { r.cancel() }

type verdict int

const (
	applied verdict = iota
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
			bo.sleep(ctx)
			continue
		}
		break
	}
	claiming := true
	// unacked are entries applied and not acknowledged yet: they go with
	// the next read, in its round trip (XACK is idempotent: a failed
	// round trip keeps them for the next one).
	var unacked []string
	defer func() {
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
				sleepCtx(ctx, 100*time.Millisecond)
				continue
			}
			if len(msgs) > 0 {
				w.m.claimed.Add(float64(len(msgs)))
				log.Info("claimed pending entries", "count", len(msgs), "first", msgs[0].ID)
			}
		} else {
			msgs, err = r.ReadNewAck(ctx, unacked, w.cfg.BatchSize, 2*time.Second)
			if err == nil {
				unacked = unacked[:0]
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("read partition", "err", err)
			bo.sleep(ctx)
			continue
		}
		bo.reset()
		ids, ok := w.process(ctx, run, msgs)
		unacked = append(unacked, ids...)
		if claiming || !ok {
			// Claimed entries are acknowledged at once: the next call
			// claims, it does not read.
			w.ack(ctx, run, r, unacked)
			unacked = unacked[:0]
		}
		if !ok {
			return
		}
	}
}

// process applies msgs in order and returns the ids of those applied
// (to acknowledge). ok is false when the loop must stop (lease lost or
// released); the entry in hand is always finished first.
func (w *Worker) process(ctx context.Context, run *partitionRun, msgs []redis.XMessage) (ids []string, ok bool) {
	ids = make([]string, 0, len(msgs))
	for _, m := range msgs {
		// Past the lease's expiry unless renewed (Redis unreachable, say):
		// apply nothing until the renewer extends it or gives it up.
		for time.Now().UnixMilli() > run.validUntil.Load() {
			if run.fenced.Load() || !sleepCtx(ctx, 50*time.Millisecond) {
				return ids, false
			}
		}
		if ctx.Err() != nil {
			return ids, false
		}
		switch w.applyEntry(ctx, run, m) {
		case applied:
			ids = append(ids, m.ID)
		case stopped:
			return ids, false
		}
	}
	return ids, true
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
func (w *Worker) applyEntry(ctx context.Context, run *partitionRun, m redis.XMessage) verdict {
	env, err := streams.DecodeEnvelope(m.ID, m.Values)
	if err != nil {
		return w.deadLetter(ctx, run, m, err, 1)
	}
	bo := newBackoff()
	attempts := 0
	for {
		start := time.Now()
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		out, err := w.safeApply(actx, run, env)
		cancel()
		if err == nil {
			w.m.applied.WithLabelValues(env.Type, out.Status).Inc()
			w.m.applySeconds.WithLabelValues(env.Type).Observe(time.Since(start).Seconds())
			for _, ev := range out.Events {
				w.m.eventsOut.WithLabelValues(ev).Inc()
			}
			return applied
		}
		if errors.Is(err, ErrFenced) {
			w.log.Warn("fenced: a newer lease token wrote to this room; giving the partition up", "partition", run.p, "entry", m.ID)
			run.fenced.Store(true)
			return stopped
		}
		if streams.IsUnavailable(err) && !errors.Is(err, ErrPermanent) {
			w.log.Warn("apply: Redis unavailable, retrying", "partition", run.p, "entry", m.ID, "err", err)
			if !bo.sleep(ctx) {
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
		if !bo.sleep(ctx) {
			return stopped
		}
	}
}

// safeApply turns a panic in a handler into an error, so one bad entry
// cannot take the worker down.
func (w *Worker) safeApply(ctx context.Context, run *partitionRun, env *streams.Envelope) (out Outcome, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: panic: %v\n%s", ErrPermanent, p, debug.Stack())
		}
	}()
	return w.applier.Apply(ctx, run.p, run.token, env)
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
		if !bo.sleep(ctx) {
			return stopped
		}
	}
}

// backoff sleeps 50 ms doubling to 2 s.
type backoff struct{ d time.Duration }

func newBackoff() *backoff { return &backoff{d: 50 * time.Millisecond} }

func (b *backoff) reset() { b.d = 50 * time.Millisecond }

// sleep waits for the next delay; false when ctx ended first.
func (b *backoff) sleep(ctx context.Context) bool {
	ok := sleepCtx(ctx, b.d)
	if b.d *= 2; b.d > 2*time.Second {
		b.d = 2 * time.Second
	}
	return ok
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
