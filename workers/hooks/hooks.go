package hooks

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomstream/roomstream/streams"
)

// Options are optional settings of New; nil means defaults.
type Options struct {
	// Registerer receives the process's metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Now is the clock of leases and signatures.
	Now func() time.Time
}

// Hooks is one hooks process: it leases its share of the feed partitions
// and delivers their events.
type Hooks struct {
	cfg    Config
	c      *streams.Client
	log    *slog.Logger
	id     string
	m      *metrics
	sign   *signer
	filter filter
	http   *http.Client
	now    func() time.Time
	// slots bounds the deliveries in flight (ROOMSTREAM_WEBHOOK_CONCURRENCY).
	slots chan struct{}

	mu     sync.Mutex
	held   map[int]*run
	wg     sync.WaitGroup
	ready  atomic.Bool
	closed chan struct{}
}

// New returns a hooks process for a validated cfg; Run starts it.
func New(cfg Config, c *streams.Client, log *slog.Logger, opts *Options) (*Hooks, error) {
	if opts == nil {
		opts = &Options{}
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s, err := newSigner(cfg.Secret)
	if err != nil {
		return nil, err
	}
	f, err := newFilter(cfg.Events)
	if err != nil {
		return nil, err
	}
	id := cfg.HooksID
	if id == "" {
		id = "h-" + streams.RandomID(8)
	}
	return &Hooks{
		cfg: cfg, c: c, id: id, now: now, sign: s, filter: f,
		log: log.With("hooks", id),
		m:   newMetrics(opts.Registerer),
		// Redirects are not followed: a 3xx is an answer other than 2xx.
		http:   &http.Client{Timeout: cfg.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		slots:  make(chan struct{}, cfg.Concurrency),
		held:   map[int]*run{},
		closed: make(chan struct{}),
	}, nil
}

// ID returns the process's name (its lease owner name).
func (h *Hooks) ID() string { return h.id }

// Ready reports whether the process reached Redis and runs its loops.
func (h *Hooks) Ready() bool { return h.ready.Load() }

// Owned returns the partitions this process holds now.
func (h *Hooks) Owned() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]int, 0, len(h.held))
	for p := range h.held {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Wait blocks until Run has returned.
func (h *Hooks) Wait() { <-h.closed }

// run is one partition this process delivers, under its lease.
type run struct {
	p          int
	token      int64
	ctx        context.Context
	cancel     context.CancelFunc
	validUntil atomic.Int64 // ms: the lease is surely ours until then
	done       chan struct{}
}

// valid tells whether the lease is still surely held at now: deliveries
// stop before it could have passed to another process.
func (r *run) valid(now time.Time) bool {
	return r.ctx.Err() == nil && now.UnixMilli() < r.validUntil.Load()
}

// Run runs the process until ctx ends, then stops its deliveries (those
// in flight finish, within ROOMSTREAM_WEBHOOK_TIMEOUT; retries wait for
// the partition's next holder) and gives its leases up at once.
func (h *Hooks) Run(ctx context.Context) error {
	defer close(h.closed)
	if err := h.c.EnsureMeta(ctx); err != nil {
		return err
	}
	h.log.Info("hooks started", "partitions", h.c.Partitions(), "url", h.cfg.URL, "lease_ttl", h.cfg.LeaseTTL)
	loops, stop := context.WithCancel(context.Background())
	defer stop()
	tick := time.NewTicker(h.cfg.LeaseTTL / 3)
	defer tick.Stop()
	for {
		h.balance(loops)
		select {
		case <-ctx.Done():
			h.shutdown()
			return nil
		case <-tick.C:
		}
	}
}

func (h *Hooks) shutdown() {
	h.ready.Store(false)
	h.mu.Lock()
	runs := make([]*run, 0, len(h.held))
	for _, r := range h.held {
		runs = append(runs, r)
	}
	h.mu.Unlock()
	for _, r := range runs {
		r.cancel()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, r := range runs {
		<-r.done
		if err := h.c.ReleaseHooksLease(ctx, r.p, h.id, r.token); err != nil {
			h.log.Warn("release lease", "partition", r.p, "err", err)
		}
	}
	h.wg.Wait()
	if err := h.c.HooksGone(ctx, h.id); err != nil {
		h.log.Warn("unregister", "err", err)
	}
	h.log.Info("hooks stopped", "released", len(runs))
}

// balance runs every LeaseTTL/3: it renews the leases held, drops the
// lost ones, gives up partitions above a fair share (ceil(partitions /
// live hooks processes)) and takes free ones below it, as workers do with
// the inbound partitions.
func (h *Hooks) balance(ctx context.Context) {
	now := h.now()
	live, err := h.c.HooksHeartbeat(ctx, h.id, now, h.cfg.LeaseTTL)
	if err != nil {
		h.log.Warn("hooks heartbeat", "err", err)
		h.ready.Store(false)
		return
	}
	h.ready.Store(true)
	held := h.renew(ctx, now)
	n := h.c.Partitions()
	share := (n + len(live) - 1) / len(live)
	start := h.start(n)
	// Partitions furthest from this process's start point go first, so
	// that processes keep stable sets.
	slices.SortFunc(held, func(a, b int) int { return (b-start+n)%n - (a-start+n)%n })
	for i := 0; i < len(held)-share; i++ {
		h.release(held[i])
	}
	missing := share - len(held)
	for i := 0; i < n && missing > 0; i++ {
		p := (start + i) % n
		if slices.Contains(held, p) {
			continue
		}
		token, err := h.c.AcquireHooksLease(ctx, p, h.id, h.cfg.LeaseTTL)
		if err != nil {
			h.log.Warn("acquire lease", "partition", p, "err", err)
			break
		}
		if token == 0 {
			continue
		}
		h.startRun(p, token, now)
		missing--
	}
	h.observeLag(ctx)
}

// start is where this process begins looking for partitions, spread by
// its id so that processes starting together do not race for the same.
func (h *Hooks) start(n int) int {
	f := fnv.New32a()
	_, _ = f.Write([]byte(h.id))
	return int(f.Sum32() % uint32(n))
}

// renew renews every lease held and returns the partitions still held.
func (h *Hooks) renew(ctx context.Context, now time.Time) []int {
	h.mu.Lock()
	runs := make([]*run, 0, len(h.held))
	for _, r := range h.held {
		runs = append(runs, r)
	}
	h.mu.Unlock()
	var held []int
	for _, r := range runs {
		err := h.c.RenewHooksLease(ctx, r.p, h.id, r.token, h.cfg.LeaseTTL)
		switch {
		case err == nil:
			r.validUntil.Store(now.Add(h.cfg.LeaseTTL).UnixMilli())
		case errors.Is(err, streams.ErrLeaseLost):
			h.log.Warn("partition lease lost", "partition", r.p, "token", r.token)
			h.m.leaseChanges.WithLabelValues("lost").Inc()
			r.validUntil.Store(0)
			r.cancel()
			h.forget(r.p)
			continue
		default:
			h.log.Warn("renew lease", "partition", r.p, "err", err)
		}
		held = append(held, r.p)
	}
	return held
}

func (h *Hooks) startRun(p int, token int64, now time.Time) {
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{p: p, token: token, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	r.validUntil.Store(now.Add(h.cfg.LeaseTTL).UnixMilli())
	h.mu.Lock()
	h.held[p] = r
	h.m.owned.Set(float64(len(h.held)))
	h.mu.Unlock()
	h.m.leaseChanges.WithLabelValues("acquired").Inc()
	h.log.Info("partition acquired", "partition", p, "token", token)
	h.wg.Add(1)
	go func() { defer h.wg.Done(); h.deliverPartition(r) }()
}

// release stops a partition's deliveries and gives its lease up.
func (h *Hooks) release(p int) {
	h.mu.Lock()
	r := h.held[p]
	h.mu.Unlock()
	if r == nil {
		return
	}
	r.cancel()
	h.forget(p)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		<-r.done
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.c.ReleaseHooksLease(ctx, p, h.id, r.token); err != nil {
			h.log.Warn("release lease", "partition", p, "err", err)
			return
		}
		h.m.leaseChanges.WithLabelValues("released").Inc()
		h.log.Info("partition released", "partition", p)
	}()
}

func (h *Hooks) forget(p int) {
	h.mu.Lock()
	delete(h.held, p)
	h.m.owned.Set(float64(len(h.held)))
	h.mu.Unlock()
	h.m.lag.DeleteLabelValues(strconv.Itoa(p))
}

// observeLag sets the lag of the partitions held.
func (h *Hooks) observeLag(ctx context.Context) {
	held := h.Owned()
	if len(held) == 0 {
		return
	}
	lags, err := h.c.HooksBacklogs(ctx)
	if err != nil {
		h.log.Debug("read the feed's backlog", "err", err)
		return
	}
	for _, p := range held {
		h.m.lag.WithLabelValues(strconv.Itoa(p)).Set(float64(lags[p]))
	}
}
