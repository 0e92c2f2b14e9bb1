package api

import (
	"context"
	"encoding/json"
	"maps"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// Page sizes of Rooms.
const (
	DefaultPageLimit = 50
	MaxPageLimit     = 1000
)

// Room reads the state of room: members, lock, active uploads and files,
// decoded as the workers decode a join's snapshot.
func (s *Service) Room(ctx context.Context, room string) (*schemas.RoomSnapshot, error) {
	if err := checkID("roomId", room); err != nil {
		return nil, err
	}
	k := s.c.Keys
	var hs [4]*redis.MapStringStringCmd
	_, err := s.c.Redis().Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, key := range []string{k.Room(room), k.RoomSockets(room), k.RoomUploads(room), k.RoomFiles(room)} {
			hs[i] = p.HGetAll(ctx, key)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(hs[0].Val()) == 0 {
		return nil, notFound("room %s does not exist", room)
	}
	// Every entry, and no counts: the lists are whole (a join's snapshot
	// is cut to the snapshot limit; this read is not).
	return streams.DecodeRoomSnapshot(room, streams.RoomHashes{Room: maps.All(hs[0].Val()),
		Sockets: maps.All(hs[1].Val()), Uploads: maps.All(hs[2].Val()), Files: maps.All(hs[3].Val())}), nil
}

// RoomSummary is one room of a listing.
type RoomSummary struct {
	RoomID       string `json:"roomId"`
	Name         string `json:"name"`
	Members      int    `json:"members"`
	IsLocked     bool   `json:"isLocked"`
	LockedBy     string `json:"lockedBy,omitempty"`
	LastActivity string `json:"lastActivity,omitempty"`
}

// RoomPage is one page of rooms; NextCursor is "" after the last page.
type RoomPage struct {
	Rooms      []RoomSummary `json:"rooms"`
	NextCursor string        `json:"nextCursor"`
}

// Rooms lists rooms a page at a time. Pages follow Redis SCAN over the
// room:{R} hashes (node by node on a cluster): a room present for the
// whole listing is listed at least once, and a page may hold a few more
// rooms than limit (what one SCAN step found).
func (s *Service) Rooms(ctx context.Context, cursor string, limit int) (*RoomPage, error) {
	if limit == 0 {
		limit = DefaultPageLimit
	}
	if limit < 1 || limit > MaxPageLimit {
		return nil, badField("limit", "must be between 1 and %d", MaxPageLimit)
	}
	node, pos := 0, uint64(0)
	if cursor != "" {
		n, p, ok := strings.Cut(cursor, "-")
		var err1, err2 error
		node, err1 = strconv.Atoi(n)
		pos, err2 = strconv.ParseUint(p, 10, 64)
		if !ok || err1 != nil || err2 != nil || node < 0 {
			return nil, badField("cursor", "must be a nextCursor of an earlier page")
		}
	}
	nodes, err := s.nodes(ctx)
	if err != nil {
		return nil, err
	}
	if node >= len(nodes) {
		return nil, badField("cursor", "must be a nextCursor of an earlier page (the cluster changed: start again)")
	}
	pattern := globEscape(s.c.Keys.Prefix()) + "room:{*}"
	head := len(s.c.Keys.Prefix()) + len("room:{")
	var ids []string
	for len(ids) < limit {
		keys, next, err := nodes[node].ScanType(ctx, pos, pattern, int64(limit), "hash").Result()
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			ids = append(ids, k[head:len(k)-1])
		}
		pos = next
		if pos == 0 {
			node++
			if node >= len(nodes) {
				break
			}
		}
	}
	page := &RoomPage{Rooms: []RoomSummary{}}
	if node < len(nodes) {
		page.NextCursor = strconv.Itoa(node) + "-" + strconv.FormatUint(pos, 10)
	}
	if len(ids) == 0 {
		return page, nil
	}
	sort.Strings(ids)
	cmds := make([]*redis.SliceCmd, len(ids))
	_, err = s.c.Redis().Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HMGet(ctx, s.c.Keys.Room(id), "name", "isLocked", "lockedBy", "activeUsers", "lastActivity")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, id := range ids {
		v := cmds[i].Val()
		str := func(j int) string { x, _ := v[j].(string); return x }
		r := RoomSummary{RoomID: id, Name: str(0), IsLocked: str(1) == "true", LockedBy: str(2), LastActivity: str(4)}
		if r.Name == "" {
			r.Name = id
		}
		var users []string
		_ = json.Unmarshal([]byte(str(3)), &users)
		r.Members = len(users)
		page.Rooms = append(page.Rooms, r)
	}
	return page, nil
}

// nodes returns the Redis nodes to scan in a stable order: the client
// itself, or a cluster's masters by address.
func (s *Service) nodes(ctx context.Context) ([]redis.Cmdable, error) {
	cc, ok := s.c.Redis().(*redis.ClusterClient)
	if !ok {
		return []redis.Cmdable{s.c.Redis()}, nil
	}
	var (
		mu      sync.Mutex
		masters []*redis.Client
	)
	err := cc.ForEachMaster(ctx, func(_ context.Context, c *redis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		masters = append(masters, c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(masters, func(i, j int) bool { return masters[i].Options().Addr < masters[j].Options().Addr })
	out := make([]redis.Cmdable, len(masters))
	for i, m := range masters {
		out[i] = m
	}
	return out, nil
}

func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
