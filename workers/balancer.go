package workers

import (
	"context"
	"errors"
	"hash/fnv"
	"sort"
	"time"

	"github.com/roomstream/roomstream/streams"
)

// balance runs every LeaseTTL/3: it registers the worker (and looks which
// stream format every live process reads), renews the leases it holds,
// drops the ones it lost, gives up partitions above its fair share
// (ceil(partitions / live workers)) and takes free ones below it. Workers
// joining or leaving thus move partitions within a few rounds; a dead
// worker's partitions are taken once its leases expire.
func (w *Worker) balance(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	now := w.now()
	runs, tokens := w.holding()
	live, renewed, err := w.c.Beat(ctx, w.id, now, w.cfg.LeaseTTL, tokens)
	w.applyRenewals(now, runs, renewed) // keep what we have if Redis answers that
	if err != nil {
		w.log.Warn("worker heartbeat", "err", err)
		w.ready.Store(false)
		return
	}
	w.ready.Store(true)
	w.c.FollowFormat(ctx, w.log)
	n := w.c.Partitions()
	share := (n + len(live) - 1) / len(live)

	w.mu.Lock()
	held := make([]int, 0, len(w.held))
	for p := range w.held {
		held = append(held, p)
	}
	w.mu.Unlock()
	sort.Ints(held)
	if extra := len(held) - share; extra > 0 {
		// Give up the partitions furthest from this worker's start point,
		// so that workers keep stable sets.
		start := w.start(n)
		sort.Slice(held, func(i, j int) bool { return (held[i]-start+n)%n > (held[j]-start+n)%n })
		for _, p := range held[:extra] {
			w.release(p)
		}
		return
	}
	missing := share - len(held)
	for i := 0; i < n && missing > 0; i++ {
		p := (w.start(n) + i) % n
		w.mu.Lock()
		_, mine := w.held[p]
		w.mu.Unlock()
		if mine {
			continue
		}
		token, err := w.c.AcquireLease(ctx, p, w.id, w.cfg.LeaseTTL)
		if err != nil {
			w.log.Warn("acquire lease", "partition", p, "err", err)
			return
		}
		if token == 0 {
			continue
		}
		w.startRun(ctx, p, token, now)
		missing--
	}
}

// start is where this worker begins looking for partitions, spread by its
// id so that workers starting together do not all race for partition 0.
func (w *Worker) start(n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(w.id))
	return int(h.Sum32() % uint32(n))
}

func (w *Worker) startRun(ctx context.Context, p int, token int64, now time.Time) {
	rctx, cancel := context.WithCancel(ctx)
	run := &partitionRun{p: p, token: token, ctx: rctx, cancel: cancel, done: make(chan struct{}), onStop: w.nudgeReads}
	run.validUntil.Store(now.Add(w.cfg.LeaseTTL).UnixMilli())
	w.mu.Lock()
	w.held[p] = run
	w.m.owned.Set(float64(len(w.held)))
	w.mu.Unlock()
	w.m.leaseChanges.WithLabelValues("acquired").Inc()
	w.log.Info("partition acquired", "partition", p, "token", token)
	w.wg.Add(1)
	go func() { defer w.wg.Done(); w.runAlone(run, nil, nil) }()
}

// holding returns the runs this worker holds and their lease tokens.
func (w *Worker) holding() (map[int]*partitionRun, map[int]int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	runs := make(map[int]*partitionRun, len(w.held))
	tokens := make(map[int]int64, len(w.held))
	for p, r := range w.held {
		runs[p], tokens[p] = r, r.token
	}
	return runs, tokens
}

// applyRenewals takes in the outcome of renewing the leases of runs,
// sent at start: a renewed lease is valid a lease TTL from then, a lost
// one stops its run.
func (w *Worker) applyRenewals(start time.Time, runs map[int]*partitionRun, renewed map[int]error) {
	for p, err := range renewed {
		r := runs[p]
		switch {
		case err == nil:
			r.validUntil.Store(start.Add(w.cfg.LeaseTTL).UnixMilli())
		case errors.Is(err, streams.ErrLeaseLost):
			w.log.Warn("partition lease lost", "partition", r.p, "token", r.token)
			w.m.leaseChanges.WithLabelValues("lost").Inc()
			r.validUntil.Store(0)
			r.stop()
			w.forget(r.p)
		default:
			w.log.Warn("renew lease", "partition", r.p, "err", err)
		}
	}
}

// release stops a partition's loop and gives its lease up once the entry
// in hand is done.
func (w *Worker) release(p int) {
	w.mu.Lock()
	r, ok := w.held[p]
	w.mu.Unlock()
	if !ok {
		return
	}
	r.stop()
	w.forget(p)
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		<-r.done
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := w.c.ReleaseLease(ctx, p, w.id, r.token); err != nil {
			w.log.Warn("release lease", "partition", p, "err", err)
			return
		}
		w.m.leaseChanges.WithLabelValues("released").Inc()
		w.log.Info("partition released", "partition", p)
	}()
}

// abandon gives up a fenced partition: its lease is released (when still
// ours) so that the next acquisition, by this worker or another, draws a
// new token above the one that fenced us.
func (w *Worker) abandon(r *partitionRun) {
	w.mu.Lock()
	if w.held[r.p] == r {
		delete(w.held, r.p)
		w.m.owned.Set(float64(len(w.held)))
	}
	w.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.c.ReleaseLease(ctx, r.p, w.id, r.token); err != nil {
		w.log.Warn("release fenced lease", "partition", r.p, "err", err)
	}
	w.m.leaseChanges.WithLabelValues("lost").Inc()
}

func (w *Worker) forget(p int) {
	w.mu.Lock()
	delete(w.held, p)
	w.m.owned.Set(float64(len(w.held)))
	w.mu.Unlock()
}
