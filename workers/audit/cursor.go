package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/streams"
)

// Entry is one inbound entry as stored.
type Entry struct {
	Partition int
	ID        streams.ID
	Values    map[string]any
}

// Room returns the entry's room field.
func (e Entry) Room() string { v, _ := e.Values["room"].(string); return v }

// Envelope decodes the entry.
func (e Entry) Envelope() (*streams.Envelope, error) {
	return streams.DecodeEnvelope(e.ID.String(), e.Values)
}

// Bounds limit entries by the time of their id (when the log accepted
// them): Since inclusive, Until exclusive; zero means open.
type Bounds struct{ Since, Until time.Time }

func (b Bounds) start() string {
	if b.Since.IsZero() {
		return "-"
	}
	return idAt(b.Since).String()
}

func (b Bounds) end() string {
	if b.Until.IsZero() {
		return "+"
	}
	return "(" + idAt(b.Until).String()
}

// idAt is streams.IDAt for any time: before 1970 is the log's start.
func idAt(t time.Time) streams.ID {
	if t.UnixMilli() < 0 {
		return streams.ID{}
	}
	return streams.IDAt(t)
}

// Cursor reads one partition in id order, one XRANGE page at a time. Once
// it reached the end, Next looks again for entries added since, so a
// cursor can follow a growing partition.
type Cursor struct {
	rdb  redis.UniversalClient
	key  string
	p    int
	room string // only this room's entries; "" = all
	next string // start of the next page
	end  string
	size int64
	page []redis.XMessage
	i    int
	last streams.ID
	prog *progress // counts every entry read, matching or not
}

// Cursor returns a cursor over partition p within b, keeping only room's
// entries when room is not empty. pageSize bounds the entries in memory.
func (l *Log) Cursor(p int, b Bounds, room string, pageSize int64) *Cursor {
	if pageSize < 1 {
		pageSize = 256
	}
	return &Cursor{rdb: l.c.Redis(), key: l.c.Keys.Inbound(p), p: p, room: room, next: b.start(), end: b.end(), size: pageSize}
}

// Last returns the id of the last entry read (matching or not).
func (c *Cursor) Last() streams.ID { return c.last }

// Next returns the next entry; false when there is none (for now).
func (c *Cursor) Next(ctx context.Context) (Entry, bool, error) {
	for {
		for c.i < len(c.page) {
			m := c.page[c.i]
			c.i++
			id, err := streams.ParseID(m.ID)
			if err != nil {
				return Entry{}, false, fmt.Errorf("partition %d: %w", c.p, err)
			}
			c.last, c.next = id, "("+m.ID
			if c.prog != nil {
				c.prog.add(1)
			}
			if c.room != "" {
				if r, _ := m.Values["room"].(string); r != c.room {
					continue
				}
			}
			return Entry{Partition: c.p, ID: id, Values: m.Values}, true, nil
		}
		c.page, c.i = nil, 0
		msgs, err := c.rdb.XRangeN(ctx, c.key, c.next, c.end, c.size).Result()
		if err != nil {
			return Entry{}, false, fmt.Errorf("read partition %d from %s: %w", c.p, c.next, err)
		}
		if len(msgs) == 0 {
			return Entry{}, false, nil
		}
		c.page = msgs
	}
}

// pageSize keeps the pages of all partitions read at once to a few
// thousand entries.
func pageSize(partitions int) int64 {
	return int64(min(256, max(16, 4096/partitions)))
}
