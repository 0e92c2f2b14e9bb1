package workers

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// The applied-events feed (streams/feed.go): the events rooms heard,
// appended to the partitions' feed streams in the same round trip as the
// other writes of the entries that produced them.

// FeedConfig configures the applied-events feed.
type FeedConfig struct {
	EventsFeed          string        `envconfig:"EVENTS_FEED" default:"off" desc:"applied-events feed (feed:{p} streams): off, changes (every room event but file-upload-progress) or all"`
	EventsFeedRetention time.Duration `envconfig:"EVENTS_FEED_RETENTION" default:"168h" desc:"how long the feed keeps an event (MINID trimming)"`
	EventsFeedMaxLen    int64         `envconfig:"EVENTS_FEED_MAXLEN" default:"1000000" desc:"events kept per feed stream at most"`
}

// Feed modes (ROOMSTREAM_EVENTS_FEED).
const (
	FeedOff     = "off"
	FeedChanges = "changes"
	FeedAll     = "all"
)

// Validate checks the configuration and names the variable at fault.
// The zero value is valid: the feed off.
func (c *FeedConfig) Validate() error {
	switch c.EventsFeed {
	case "", FeedOff:
		return nil
	case FeedChanges, FeedAll:
	default:
		return fmt.Errorf("ROOMSTREAM_EVENTS_FEED must be off, changes or all, got %q", c.EventsFeed)
	}
	if c.EventsFeedRetention < time.Minute {
		return fmt.Errorf("ROOMSTREAM_EVENTS_FEED_RETENTION must be at least 1m, got %s", c.EventsFeedRetention)
	}
	if c.EventsFeedMaxLen < 1000 {
		return fmt.Errorf("ROOMSTREAM_EVENTS_FEED_MAXLEN must be at least 1000, got %d", c.EventsFeedMaxLen)
	}
	return nil
}

// feedMode says which events an entry's effects keep for the feed. The
// zero value is off: effects then keep nothing, and nothing is written.
type feedMode uint8

const (
	feedOff feedMode = iota
	feedChanges
	feedAll
)

// wants tells whether the feed takes event.
func (m feedMode) wants(event string) bool {
	switch m {
	case feedAll:
		return true
	case feedChanges:
		// Progress reports are most of the traffic and change nothing a
		// backend keeps: the changes feed leaves them out.
		return event != schemas.EventFileUploadProgress
	}
	return false
}

// feed is what an applier with the feed on writes it with.
type feed struct {
	mode      feedMode
	retention time.Duration
	maxLen    int64
}

// WithFeed returns a copy of a that writes the events of the entries it
// applies to the feed as cfg says (off: a itself).
func (a *Applier) WithFeed(cfg FeedConfig) *Applier {
	f := &feed{retention: cfg.EventsFeedRetention, maxLen: cfg.EventsFeedMaxLen}
	switch cfg.EventsFeed {
	case FeedChanges:
		f.mode = feedChanges
	case FeedAll:
		f.mode = feedAll
	default:
		return a
	}
	b := *a
	b.feed = f
	return &b
}

// feedMode is the mode the effects of a's entries keep events for.
func (a *Applier) feedMode() feedMode {
	if a.feed == nil || a.roomsOnly {
		return feedOff
	}
	return a.feed.mode
}

// keep records an event the room heard for the feed, when the feed
// takes it.
func (e *effects) keep(event string, body []byte) {
	if e.feed.wants(event) {
		e.fed = append(e.fed, streams.FeedItem{Type: event, Data: body})
	}
}

// queueFeed queues on p the feed appends of the entries of es that
// applied with events to feed: one script call per partition. Refused
// entries have none: only an applied entry broadcasts to its room.
func (a *Applier) queueFeed(ctx context.Context, p redis.Pipeliner, es []*effects, now time.Time) []redis.Cmder {
	if a.feed == nil {
		return nil
	}
	var byPart map[int][]streams.FeedEntry
	for _, e := range es {
		if len(e.fed) == 0 {
			continue
		}
		if byPart == nil {
			byPart = make(map[int][]streams.FeedEntry, 1)
		}
		byPart[e.partition] = append(byPart[e.partition], streams.FeedEntry{EntryID: e.source, RoomID: e.room, At: streams.ISOTime(e.at), Events: e.fed})
	}
	if len(byPart) == 0 {
		return nil
	}
	minID := streams.IDAt(now.Add(-a.feed.retention)).String()
	cmds := make([]redis.Cmder, 0, len(byPart))
	for part, entries := range byPart {
		cmds = append(cmds, a.c.FeedAppend(ctx, p, part, entries, minID, a.feed.maxLen, a.feed.retention))
	}
	return cmds
}

// feedAgain writes the feed appends of es again when cmds (a commit's)
// failed only for want of the feed's script in Redis (first use, or a
// restart): it loads the script first.
func (a *Applier) feedAgain(ctx context.Context, cmds []redis.Cmder, es []*effects, now time.Time) error {
	for _, c := range cmds {
		if err := c.Err(); err != nil && !missing(err) {
			return err
		}
	}
	if err := a.c.LoadFeedScript(ctx); err != nil {
		return err
	}
	_, err := a.c.Redis().Pipelined(ctx, func(p redis.Pipeliner) error {
		a.queueFeed(ctx, p, es, now)
		return nil
	})
	return err
}

// commitFeedDurably writes the feed appends of es, each partition's on a
// replica before it returns (durable mode).
func (a *Applier) commitFeedDurably(ctx context.Context, es []*effects, now time.Time) error {
	if a.feed == nil {
		return nil
	}
	parts := map[int]bool{}
	for _, e := range es {
		if len(e.fed) > 0 {
			parts[e.partition] = true
		}
	}
	for part := range parts {
		var one []*effects
		for _, e := range es {
			if e.partition == part {
				one = append(one, e)
			}
		}
		write := func() error {
			return a.c.Durably(ctx, a.keys.Feed(part), func(p redis.Pipeliner) { a.queueFeed(ctx, p, one, now) })
		}
		err := write()
		if err != nil && missing(err) {
			if err = a.c.LoadFeedScript(ctx); err == nil {
				err = write()
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}
