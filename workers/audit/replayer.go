package audit

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/streams"
	"github.com/roomstream/roomstream/workers"
)

// DefaultEmptyRoomTTL is the EMPTY_ROOM_TTL replay assumes unless told.
var DefaultEmptyRoomTTL = workers.DefaultEmptyRoomTTL

// Options are the optional settings of New; nil means defaults.
type Options struct {
	// LogPrefix is the key prefix of the log to read ("" = the
	// deployment's own; an imported copy lives under another).
	LogPrefix string
	// ScratchPrefix is where state is rebuilt ("" = a fresh prefix under
	// the deployment's, see streams.Keys.Scratch). It must hold no data.
	ScratchPrefix string
	// Keep leaves the rebuilt state in place instead of deleting it.
	Keep bool
	// EmptyRoomTTL is how long the workers keep an empty room (their
	// ROOMSTREAM_EMPTY_ROOM_TTL): replay expires rooms as they did.
	EmptyRoomTTL time.Duration
	// Limits are the workers' room limits (zero fields: the defaults):
	// replay refuses what they refused.
	Limits workers.Limits
	// Progress receives progress lines (nil: none).
	Progress io.Writer
	// Concurrency is how many partitions verify rebuilds at once (0: 8).
	Concurrency int
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Replayer reads, rebuilds and compares the log of one deployment.
type Replayer struct {
	rdb    redis.UniversalClient
	cfg    streams.Config // the deployment: its prefix holds the live state
	state  streams.Keys
	opts   Options
	logCfg streams.Config
}

// New returns a replayer of the deployment cfg describes, on rdb.
func New(rdb redis.UniversalClient, cfg streams.Config, opts *Options) *Replayer {
	o := Options{}
	if opts != nil {
		o = *opts
	}
	if o.EmptyRoomTTL <= 0 {
		o.EmptyRoomTTL = DefaultEmptyRoomTTL
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	logCfg := cfg
	if o.LogPrefix != "" {
		logCfg.KeyPrefix = o.LogPrefix
	}
	return &Replayer{rdb: rdb, cfg: cfg, state: streams.NewKeys(cfg.KeyPrefix), opts: o, logCfg: logCfg}
}

// log opens the log to read.
func (r *Replayer) log(ctx context.Context) (*Log, error) { return openLog(ctx, r.rdb, r.logCfg) }

// scratch is one rebuild area: a claimed prefix, the applier writing to
// it, and its cleanup.
type scratch struct {
	r       *Replayer
	prefix  string
	c       *streams.Client
	applier *workers.Applier
}

// scratchTTL is the time an empty rebuilt room lives on in Redis: long
// enough that no replay outlasts it (replay expires rooms itself, by the
// log's clock), short enough that a kept copy does not linger.
const scratchTTL = 24 * time.Hour

// newScratch claims the scratch prefix for a rebuild of a log with
// partitions partitions.
func (r *Replayer) newScratch(ctx context.Context, what string, partitions int) (*scratch, error) {
	prefix := r.opts.ScratchPrefix
	if prefix == "" {
		prefix = r.state.Scratch(newRunID(r.opts.Now()))
	}
	if err := checkPrefix(prefix, r.cfg.KeyPrefix, r.logCfg.KeyPrefix); err != nil {
		return nil, err
	}
	if err := claimPrefix(ctx, r.rdb, prefix, what, partitions, r.opts.ScratchPrefix != "", r.opts.Now()); err != nil {
		return nil, err
	}
	cfg := r.cfg
	cfg.KeyPrefix, cfg.Partitions, cfg.DurableReplicas = prefix, partitions, 0
	c := streams.New(r.rdb, cfg)
	ttl := max(r.opts.EmptyRoomTTL, scratchTTL)
	return &scratch{r: r, prefix: prefix, c: c, applier: workers.NewApplier(c, 0, ttl, r.opts.Now).WithLimits(r.opts.Limits).RoomsOnly()}, nil
}

// close deletes the scratch keys unless asked to keep them; it runs even
// when ctx was cancelled.
func (s *scratch) close(ctx context.Context) error {
	if s.r.opts.Keep {
		fmt.Fprintf(s.r.opts.Progress, "replay: rebuilt state kept under prefix %q (delete it with `roomstream replay clean -prefix %s`)\n", s.prefix, s.prefix)
		return nil
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	if _, err := dropPrefix(cctx, s.r.rdb, s.prefix); err != nil {
		return fmt.Errorf("delete scratch prefix %q: %w", s.prefix, err)
	}
	return nil
}

// Clean deletes every key of a prefix that replay created (a kept scratch
// copy or an import). It refuses a prefix without replay's marker.
func (r *Replayer) Clean(ctx context.Context, prefix string) (int64, error) {
	if err := checkPrefix(prefix, r.cfg.KeyPrefix); err != nil {
		return 0, err
	}
	meta := streams.NewKeys(prefix).Meta()
	n, err := r.rdb.HExists(ctx, meta, markerField).Result()
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", meta, err)
	}
	if !n {
		return 0, fmt.Errorf("%w: %s has no %q field", ErrNotScratch, meta, markerField)
	}
	return dropPrefix(ctx, r.rdb, prefix)
}

// CleanAll deletes the scratch prefixes of every replay run of the
// deployment (streams.Keys.Scratch), e.g. after a run was killed.
func (r *Replayer) CleanAll(ctx context.Context) (int64, error) {
	return dropPrefix(ctx, r.rdb, r.state.Scratch(""))
}
