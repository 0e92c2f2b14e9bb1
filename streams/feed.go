package streams

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The applied-events feed: one stream per partition (feed:{p}) holding
// every event a room heard, in the order the room heard it, for a
// deployment's own backend to read (XREADGROUP) and for the hooks
// processes to deliver as webhooks. Workers write it; nothing in
// roomstream reads it back but the hooks processes.

// FeedVersion is the format version of a feed entry (its "v" field).
const FeedVersion = "1"

// FeedEvent is one entry of a feed stream: one event a room heard.
type FeedEvent struct {
	// ID is the entry's id in feed:{p} (set when read). With the
	// partition it names the event for good: see EventID.
	ID        string
	Partition int
	Type      string // the event's name (user-joined, room-locked, ...)
	RoomID    string
	EntryID   string // id of the inbound entry that produced it, in in:{p}
	At        string // when that entry was accepted, ISO-8601 with ms
	Data      []byte // the event's JSON payload, as the room's members received it
}

// EventID is the event's stable id: its partition and feed entry id. A
// feed entry is written once, so every delivery of the event, retries
// and requeues included, carries the same id.
func (e *FeedEvent) EventID() string {
	return "evt_" + strconv.Itoa(e.Partition) + "_" + e.ID
}

// DecodeFeedEvent decodes the fields of feed entry id of partition p.
func DecodeFeedEvent(p int, id string, values map[string]any) (*FeedEvent, error) {
	s := func(k string) string { v, _ := values[k].(string); return v }
	e := &FeedEvent{ID: id, Partition: p, Type: s("type"), RoomID: s("roomId"), EntryID: s("entryId"), At: s("at"), Data: []byte(s("data"))}
	if e.Type == "" || e.RoomID == "" {
		return nil, fmt.Errorf("streams: feed entry %s of partition %d: no type or room", id, p)
	}
	return e, nil
}

// FeedEntry is what one applied inbound entry adds to its partition's
// feed: the events its room heard.
type FeedEntry struct {
	EntryID, RoomID, At string
	Events              []FeedItem
}

// FeedItem is one event of a FeedEntry.
type FeedItem struct {
	Type string
	Data []byte
}

var (
	//go:embed scripts/feed_append.lua
	feedAppendSrc    string
	feedAppendScript = redis.NewScript(feedAppendSrc)
)

// FeedAppend queues on pipe the append of entries (all of partition p) to
// p's feed, each inbound entry's events at most once: a room's marker
// (feed:{p}:fed:<room>) holds the last inbound entry whose events are in
// the feed, and an entry not newer than it is skipped. A redelivered
// entry (its worker crashed after the write, or the write's reply was
// lost) is thus not fed twice, and neither is an older entry whose write
// arrives late from a worker that lost its lease. The feed is trimmed to
// minID (approximately, as outbound streams are) and to about maxLen
// entries; a marker lives for keep. The script runs as EVALSHA, which
// fails with NOSCRIPT until LoadFeedScript ran on that Redis.
func (c *Client) FeedAppend(ctx context.Context, pipe redis.Cmdable, p int, entries []FeedEntry, minID string, maxLen int64, keep time.Duration) *redis.Cmd {
	keys := make([]string, 1, 1+len(entries))
	keys[0] = c.Keys.Feed(p)
	n := 4
	for _, e := range entries {
		keys = append(keys, c.Keys.FeedFed(p, e.RoomID))
		n += 4 + 2*len(e.Events)
	}
	args := make([]any, 0, n)
	args = append(args, minID, maxLen, int64(keep/time.Second), FeedVersion)
	for _, e := range entries {
		args = append(args, e.EntryID, e.RoomID, e.At, len(e.Events))
		for _, ev := range e.Events {
			args = append(args, ev.Type, ev.Data)
		}
	}
	return feedAppendScript.EvalSha(ctx, pipe, keys, args...)
}

// LoadFeedScript loads the script of FeedAppend into Redis (every master
// of a cluster).
func (c *Client) LoadFeedScript(ctx context.Context) error {
	if cc, ok := c.rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			return feedAppendScript.Load(ctx, n).Err()
		})
	}
	return feedAppendScript.Load(ctx, c.rdb).Err()
}
