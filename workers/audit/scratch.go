package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/streams"
)

// ErrPrefixInUse is returned when a scratch or import prefix already holds
// data.
var ErrPrefixInUse = errors.New("replay: prefix already holds data")

// ErrNotScratch is returned by Clean for a prefix replay did not create.
var ErrNotScratch = errors.New("replay: not a prefix made by replay")

// markerField is set in the meta hash of every prefix replay writes, so
// that Clean deletes nothing else.
const markerField = "replay"

// newRunID returns a short unique name for one replay run.
func newRunID(now time.Time) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return strconv.FormatInt(now.UnixMilli(), 10) + "-" + hex.EncodeToString(b)
}

// checkPrefix refuses a scratch prefix from which the keys of any of the
// protected prefixes could be reached: deleting "scratch*" must never
// touch them.
func checkPrefix(scratch string, protected ...string) error {
	if scratch == "" {
		return errors.New("the scratch prefix must not be empty")
	}
	if strings.ContainsAny(scratch, "{} \t\r\n") {
		return fmt.Errorf("the scratch prefix must not contain braces or spaces, got %q", scratch)
	}
	for _, p := range protected {
		for _, key := range sampleKeys(streams.NewKeys(p)) {
			if strings.HasPrefix(key, scratch) {
				return fmt.Errorf("scratch prefix %q would cover key %q of prefix %q: choose one that no key of it starts with", scratch, key, p)
			}
		}
	}
	return nil
}

// sampleKeys returns one key of every kind that prefix k can hold, with
// empty ids: a prefix that none of them starts with reaches none of the
// kind's keys (ids sit between braces, which a prefix cannot contain).
func sampleKeys(k streams.Keys) []string {
	return []string{
		k.Session(""), k.Socket(""), k.SocketRooms(""), k.UserSockets(""), k.UserRooms(""),
		k.Room(""), k.RoomUsers(""), k.RoomSockets(""), k.RoomUploads(""), k.RoomFiles(""), k.RoomApplied(""), k.RoomConns(""),
		k.UploadProgress(""), k.Resume(""), k.Inbound(0), k.Lease(0), k.Epoch(0), k.DeadLetters(0),
		k.Outbound(""), k.Connector(""), k.ConnectorSockets(""), k.Connectors(), k.GoneConnectors(),
		k.Workers(), k.Worker(""), k.OrphanLocks(), k.Janitor(), k.JanitorEpoch(), k.Meta(),
	}
}

// claimPrefix checks that prefix holds no data and marks it as replay's.
// scan also looks for any key under it (a full SCAN: for prefixes a user
// chose; generated ones are unique).
func claimPrefix(ctx context.Context, rdb redis.UniversalClient, prefix, what string, partitions int, scan bool, now time.Time) error {
	keys := streams.NewKeys(prefix)
	n, err := rdb.Exists(ctx, keys.Meta()).Result()
	if err != nil {
		return fmt.Errorf("check prefix %q: %w", prefix, err)
	}
	if n > 0 {
		return fmt.Errorf("%w: %s exists (pick another prefix, or `roomstream replay clean -prefix %s`)", ErrPrefixInUse, keys.Meta(), prefix)
	}
	used := false
	if scan {
		err = scanKeys(ctx, rdb, globEscape(prefix)+"*", 1, func(ks []string) error {
			used = used || len(ks) > 0
			return nil
		})
	}
	if err != nil {
		return err
	}
	if used {
		return fmt.Errorf("%w: keys starting with %q exist", ErrPrefixInUse, prefix)
	}
	err = rdb.HSet(ctx, keys.Meta(), markerField, what+" "+now.UTC().Format(time.RFC3339),
		"partitions", strconv.Itoa(partitions)).Err()
	if err != nil {
		return fmt.Errorf("mark prefix %q: %w", prefix, err)
	}
	return nil
}

// dropPrefix deletes every key starting with prefix.
func dropPrefix(ctx context.Context, rdb redis.UniversalClient, prefix string) (int64, error) {
	var mu sync.Mutex
	var n int64
	err := scanKeys(ctx, rdb, globEscape(prefix)+"*", 0, func(ks []string) error {
		// One UNLINK per key: on a cluster the keys of a page are in many slots.
		cmds := make([]*redis.IntCmd, len(ks))
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range ks {
				cmds[i] = p.Unlink(ctx, k)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("delete keys of %q: %w", prefix, err)
		}
		mu.Lock()
		for _, c := range cmds {
			n += c.Val()
		}
		mu.Unlock()
		return nil
	})
	return n, err
}

// scanKeys calls fn with each page of keys matching pattern, on every
// master of a cluster; fn calls never overlap. limit > 0 stops after that
// many keys.
func scanKeys(ctx context.Context, rdb redis.UniversalClient, pattern string, limit int, fn func([]string) error) error {
	var mu sync.Mutex
	seen := 0
	scan := func(ctx context.Context, node redis.Cmdable) error {
		var cursor uint64
		for {
			ks, next, err := node.Scan(ctx, cursor, pattern, 1000).Result()
			if err != nil {
				return fmt.Errorf("scan %s: %w", pattern, err)
			}
			mu.Lock()
			err = fn(ks)
			seen += len(ks)
			stop := limit > 0 && seen >= limit
			mu.Unlock()
			if err != nil || stop {
				return err
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return scan(ctx, m) })
	}
	return scan(ctx, rdb)
}

// globEscape quotes the characters SCAN MATCH treats specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
