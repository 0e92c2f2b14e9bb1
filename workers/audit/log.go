package audit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/streams"
)

// Log is the inbound log of one key prefix: the live deployment's, or an
// imported copy.
type Log struct {
	c *streams.Client
}

// openLog opens the log at cfg.KeyPrefix. The partition count recorded in
// its meta hash wins over cfg.Partitions: it is the one the log was
// written with.
func openLog(ctx context.Context, rdb redis.UniversalClient, cfg streams.Config) (*Log, error) {
	keys := streams.NewKeys(cfg.KeyPrefix)
	v, err := rdb.HGet(ctx, keys.Meta(), "partitions").Result()
	switch {
	case errors.Is(err, redis.Nil):
	case err != nil:
		return nil, fmt.Errorf("read partition count of the log at prefix %q: %w", cfg.KeyPrefix, err)
	default:
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 4096 {
			return nil, fmt.Errorf("%s holds partitions=%q, not a partition count", keys.Meta(), v)
		}
		cfg.Partitions = n
	}
	return &Log{c: streams.New(rdb, cfg)}, nil
}

// Partitions returns the number of partitions of the log.
func (l *Log) Partitions() int { return l.c.Partitions() }

// Keys names the keys of the log's prefix.
func (l *Log) Keys() streams.Keys { return l.c.Keys }

// PartitionOf returns the partition that holds room's entries.
func (l *Log) PartitionOf(room string) int { return streams.Partition(room, l.Partitions()) }

// parts returns the partitions to read: room's, or all.
func (l *Log) parts(room string) []int {
	if room != "" {
		return []int{l.PartitionOf(room)}
	}
	out := make([]int, l.Partitions())
	for i := range out {
		out[i] = i
	}
	return out
}

// Len returns how many entries partitions ps hold now.
func (l *Log) Len(ctx context.Context, ps []int) (int64, error) {
	rdb := l.c.Redis()
	cmds := make([]*redis.IntCmd, len(ps))
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, part := range ps {
			cmds[i] = p.XLen(ctx, l.c.Keys.Inbound(part))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count log entries: %w", err)
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n, nil
}

// History says how much of a partition's past the log still holds.
type History struct {
	// Trimmed is true when entries were removed from the partition
	// (retention, length bound, or an import that starts later): rooms
	// that existed before First have a past the log cannot show.
	Trimmed bool
	// First is the oldest entry still held (zero when none).
	First streams.ID
}

// History reads partition p's history from XINFO STREAM: entries-added
// larger than the length means that entries were trimmed.
func (l *Log) History(ctx context.Context, p int) (History, error) {
	info, err := l.c.Redis().XInfoStream(ctx, l.c.Keys.Inbound(p)).Result()
	if err != nil {
		if errors.Is(err, redis.Nil) || strings.Contains(err.Error(), "no such key") {
			return History{}, nil
		}
		return History{}, fmt.Errorf("read history of partition %d: %w", p, err)
	}
	h := History{}
	if info.FirstEntry.ID != "" {
		h.First, _ = streams.ParseID(info.FirstEntry.ID)
	}
	switch {
	case info.EntriesAdded > info.Length:
		h.Trimmed = true
	case info.MaxDeletedEntryID != "" && info.MaxDeletedEntryID != "0-0":
		h.Trimmed = true
	case info.EntriesAdded == 0 && info.Length > 0:
		// Redis before 7.0 does not count added entries: assume the worst.
		h.Trimmed = true
	}
	return h, nil
}

// DeadLettered returns the entries of partition p that the workers moved to
// the dead letters (never applied), with the error that stopped each.
func (l *Log) DeadLettered(ctx context.Context, p int) (map[string]string, error) {
	letters, err := l.c.DeadLetters(ctx, p)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(letters))
	for _, d := range letters {
		out[d.Source] = d.Error
	}
	return out, nil
}
