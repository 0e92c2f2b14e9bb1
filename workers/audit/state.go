package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/streams"
)

// roomState is what the design keeps of one room: the room hash, its
// users, sockets, active uploads and files, whether it expires, and the
// last entry applied to it.
type roomState struct {
	hash    map[string]string
	users   []string
	sockets map[string]string
	uploads map[string]string
	files   map[string]string
	ttl     time.Duration // of the room hash: -1 none, -2 missing
	applied string        // id of the last entry applied to the room
}

func (s roomState) exists() bool {
	return len(s.hash)+len(s.users)+len(s.sockets)+len(s.uploads)+len(s.files) > 0
}

// readRoom reads room's state under the prefix of keys (one pipeline: the
// keys share the room's hash slot).
func readRoom(ctx context.Context, rdb redis.UniversalClient, keys streams.Keys, room string) (roomState, error) {
	var (
		hash, sockets, uploads, files *redis.MapStringStringCmd
		users                         *redis.StringSliceCmd
		ttl                           *redis.DurationCmd
		applied                       *redis.StringCmd
	)
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		hash = p.HGetAll(ctx, keys.Room(room))
		users = p.SMembers(ctx, keys.RoomUsers(room))
		sockets = p.HGetAll(ctx, keys.RoomSockets(room))
		uploads = p.HGetAll(ctx, keys.RoomUploads(room))
		files = p.HGetAll(ctx, keys.RoomFiles(room))
		ttl = p.PTTL(ctx, keys.Room(room))
		applied = p.HGet(ctx, keys.RoomApplied(room), "id")
		return nil
	})
	if err != nil && err != redis.Nil {
		return roomState{}, fmt.Errorf("read room %s under %q: %w", room, keys.Prefix(), err)
	}
	st := roomState{hash: hash.Val(), users: users.Val(), sockets: sockets.Val(), uploads: uploads.Val(),
		files: files.Val(), ttl: ttl.Val(), applied: applied.Val()}
	sort.Strings(st.users)
	return st, nil
}

// Diff is one difference between the state rebuilt from the log and the
// live state.
type Diff struct {
	Key   string `json:"key"`             // the live key
	Field string `json:"field,omitempty"` // hash field or set member
	Log   string `json:"log"`             // what replaying the log gives
	Live  string `json:"live"`            // what the live state holds
}

const absent = "(absent)"

// diffRoom compares the rebuilt state (want) with the live one (got).
// Every field the design keeps is compared: the room hash (activeUploads
// as a JSON object, its key order follows Redis's hash order, which
// differs between copies), users, sockets, uploads, files, and whether
// the room expires (not the seconds left: the rebuilt copy is newer).
func diffRoom(live streams.Keys, room string, want, got roomState) []Diff {
	var out []Diff
	out = append(out, diffHash(live.Room(room), want.hash, got.hash, map[string]func(string) string{"activeUploads": canonicalJSON})...)
	out = append(out, diffSet(live.RoomUsers(room), want.users, got.users)...)
	out = append(out, diffHash(live.RoomSockets(room), want.sockets, got.sockets, nil)...)
	out = append(out, diffHash(live.RoomUploads(room), want.uploads, got.uploads, nil)...)
	out = append(out, diffHash(live.RoomFiles(room), want.files, got.files, nil)...)
	if want.exists() && got.exists() && len(want.hash) > 0 && len(got.hash) > 0 && (want.ttl > 0) != (got.ttl > 0) {
		out = append(out, Diff{Key: live.Room(room), Field: "(expiry)", Log: expiry(want.ttl), Live: expiry(got.ttl)})
	}
	return out
}

func expiry(ttl time.Duration) string {
	if ttl > 0 {
		return "expires (room empty)"
	}
	return "kept (room in use)"
}

func diffHash(key string, want, got map[string]string, norm map[string]func(string) string) []Diff {
	var out []Diff
	for _, f := range unionKeys(want, got) {
		w, wok := want[f]
		g, gok := got[f]
		same := wok == gok && w == g
		if !same && wok && gok && norm[f] != nil {
			same = norm[f](w) == norm[f](g)
		}
		if same {
			continue
		}
		d := Diff{Key: key, Field: f, Log: w, Live: g}
		if !wok {
			d.Log = absent
		}
		if !gok {
			d.Live = absent
		}
		out = append(out, d)
	}
	return out
}

func diffSet(key string, want, got []string) []Diff {
	in := func(s []string, v string) bool {
		i := sort.SearchStrings(s, v)
		return i < len(s) && s[i] == v
	}
	var out []Diff
	for _, v := range want {
		if !in(got, v) {
			out = append(out, Diff{Key: key, Field: v, Log: "member", Live: absent})
		}
	}
	for _, v := range got {
		if !in(want, v) {
			out = append(out, Diff{Key: key, Field: v, Log: absent, Live: "member"})
		}
	}
	return out
}

func unionKeys(a, b map[string]string) []string {
	ks := make([]string, 0, len(a)+len(b))
	for k := range a {
		ks = append(ks, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	return ks
}

// canonicalJSON re-encodes a JSON value with sorted object keys; invalid
// JSON is returned as is.
func canonicalJSON(s string) string {
	var v any
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return s
	}
	return string(b)
}
