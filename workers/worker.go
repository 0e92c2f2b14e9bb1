package workers

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomstream/roomstream/streams"
)

// Options are optional settings of New; nil means defaults.
type Options struct {
	// Registerer receives the worker's metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Now is the clock used for leases, schedules and trimming.
	Now func() time.Time
}

// Worker is one worker process: it leases its share of the partitions,
// applies them, and (when it holds the janitor lease) reaps dead
// connectors, releases orphaned locks and trims streams.
type Worker struct {
	cfg     Config
	c       *streams.Client
	log     *slog.Logger
	id      string
	m       *metrics
	applier *Applier
	now     func() time.Time

	mu   sync.Mutex
	held map[int]*partitionRun
	// reads are the shared reads of the partitions (one on a Redis
	// server, one per partition on Redis Cluster); loops is the context
	// they run in.
	reads  map[int]*shared
	loops  context.Context
	wg     sync.WaitGroup
	ready  atomic.Bool
	closed chan struct{}
}

// New returns a worker; Run starts it.
func New(cfg Config, c *streams.Client, log *slog.Logger, opts *Options) *Worker {
	if opts == nil {
		opts = &Options{}
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	id := cfg.WorkerID
	if id == "" {
		id = "w-" + streams.RandomID(8)
	}
	w := &Worker{
		cfg: cfg, c: c, id: id, now: now,
		log:    log.With("worker", id),
		m:      newMetrics(opts.Registerer),
		held:   map[int]*partitionRun{},
		reads:  map[int]*shared{},
		closed: make(chan struct{}),
	}
	w.applier = NewApplier(c, cfg.LockGrace, cfg.EmptyRoomTTL, now).WithLimits(cfg.Limits).WithFeed(cfg.FeedConfig)
	w.m.registerState(opts.Registerer, c.Partitions(), w.Ready)
	return w
}

// ID returns the worker's consumer name.
func (w *Worker) ID() string { return w.id }

// Ready reports whether the worker reached Redis and runs its loops.
func (w *Worker) Ready() bool { return w.ready.Load() }

// Owned returns the partitions this worker holds now.
func (w *Worker) Owned() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]int, 0, len(w.held))
	for p := range w.held {
		out = append(out, p)
	}
	return out
}

// Run runs the worker until ctx ends, then shuts down gracefully: each
// partition finishes the entry in hand and acknowledges it, and every
// lease is given up at once so that other workers take over without
// waiting for expiry.
func (w *Worker) Run(ctx context.Context) error {
	defer close(w.closed)
	if err := w.c.EnsureMeta(ctx); err != nil {
		return err
	}
	if w.applier.feed != nil {
		// Loaded before the first write needs it (a write that finds it
		// missing loads it and writes again).
		if err := w.c.LoadFeedScript(ctx); err != nil {
			w.log.Warn("load the feed's script", "err", err)
		}
	}
	w.log.Info("worker started", "partitions", w.c.Partitions(), "lease_ttl", w.cfg.LeaseTTL)
	loops, stopLoops := context.WithCancel(context.Background())
	w.mu.Lock()
	w.loops = loops
	w.mu.Unlock()
	w.wg.Add(1)
	go func() { defer w.wg.Done(); w.janitor(loops) }()

	tick := time.NewTicker(w.cfg.LeaseTTL / 3)
	defer tick.Stop()
	for {
		w.balance(loops)
		select {
		case <-ctx.Done():
			w.shutdown(stopLoops)
			return nil
		case <-tick.C:
		}
	}
}

func (w *Worker) shutdown(stopLoops context.CancelFunc) {
	w.ready.Store(false)
	w.mu.Lock()
	runs := make([]*partitionRun, 0, len(w.held))
	for _, r := range w.held {
		runs = append(runs, r)
	}
	w.mu.Unlock()
	for _, r := range runs {
		r.stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, r := range runs {
		select {
		case <-r.done:
		case <-ctx.Done():
		}
		if err := w.c.ReleaseLease(ctx, r.p, w.id, r.token); err != nil {
			w.log.Warn("release lease", "partition", r.p, "err", err)
		} else {
			w.m.leaseChanges.WithLabelValues("released").Inc()
		}
	}
	stopLoops()
	w.wg.Wait()
	if err := w.c.WorkerGone(ctx, w.id); err != nil {
		w.log.Warn("unregister worker", "err", err)
	}
	w.log.Info("worker stopped", "released", len(runs))
}

// nudgeReads has every shared read look at its partitions now.
func (w *Worker) nudgeReads() {
	w.mu.Lock()
	reads := make([]*shared, 0, len(w.reads))
	for _, g := range w.reads {
		reads = append(reads, g)
	}
	w.mu.Unlock()
	for _, g := range reads {
		g.nudge()
	}
}

// Wait blocks until Run has returned.
func (w *Worker) Wait() { <-w.closed }

// mustJSON encodes a payload (streams.MustJSON: the one definition, shared
// with the connector).
var mustJSON = streams.MustJSON

func (w *Worker) String() string { return fmt.Sprintf("worker %s", w.id) }
