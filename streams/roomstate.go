package streams

import (
	"encoding/json"
	"iter"
	"sort"
	"strings"

	"github.com/roomstream/roomstream/schemas"
)

// The separators inside the values the room scripts keep and return
// (workers/scripts/prelude.lua names them FS, PS, KS and RS). They are
// ASCII control characters, which no id, name or JSON value of the design
// can hold unescaped.
const (
	// FieldSep (FS, \31) separates the fields of one value: a
	// room:{R}:sockets value (connector, userId, joinedAt, userName, see
	// ParseRoomSocket), a socket's entry in room:{R}:applied (origin, seq,
	// entry time) and a socket evict.lua removed (socket id, connector).
	FieldSep = "\x1f"
	// ListSep (PS, \29) separates the items of a list in a script's reply:
	// the connectors hosting a room, the sockets evict.lua removed, and
	// the entries of a flattened hash (FlatHash).
	ListSep = "\x1d"
	// KeySep (KS, \28) separates a flattened hash entry's key from its
	// value.
	KeySep = "\x1c"
	// RecordSep (RS, \30) separates the elements of the reply cached in
	// room:{R}:applied's result field, which only the scripts read back.
	RecordSep = "\x1e"
)

// RoomSocket is one value of room:{R}:sockets: the connector a socket of
// the room is on, its user, and when it joined.
type RoomSocket struct {
	Connector, UserID, JoinedAt, UserName string
}

// ParseRoomSocket splits a room:{R}:sockets value ("connector FS userId FS
// joinedAt FS userName"; the name may hold anything but comes last). ok
// is false for a value with fewer fields.
func ParseRoomSocket(v string) (s RoomSocket, ok bool) {
	f := strings.SplitN(v, FieldSep, 4)
	if len(f) < 4 {
		return RoomSocket{}, false
	}
	return RoomSocket{Connector: f[0], UserID: f[1], JoinedAt: f[2], UserName: f[3]}, true
}

// FlatHash yields the entries of a hash the room scripts flattened into
// one string ("k KS v PS k KS v"), in their order; "" holds none.
func FlatHash(s string) iter.Seq2[string, string] {
	return func(yield func(k, v string) bool) {
		if s == "" {
			return
		}
		for kv := range strings.SplitSeq(s, ListSep) {
			k, v, _ := strings.Cut(kv, KeySep)
			if !yield(k, v) {
				return
			}
		}
	}
}

// RoomHashes are the hashes a room's snapshot is made of, each as its
// entries: room:{R} (the design's RoomState), room:{R}:sockets,
// room:{R}:uploads and room:{R}:files. The workers get them flattened
// from join.lua (FlatHash), the server API from HGETALL (maps.All).
type RoomHashes struct {
	Room, Sockets, Uploads, Files iter.Seq2[string, string]
}

// DecodeRoomSnapshot builds the state of room roomID from its hashes,
// every entry of every list: members one per user (the earliest joinedAt
// of the user's sockets; the name of the first socket met), by joinedAt
// then user id; uploads by upload id; files by createdAt then id, oldest
// first. Socket values and records that do not parse are skipped. A room
// without a name is named by its id. The counts are left zero:
// LimitSnapshot sets them where the lists may be cut.
func DecodeRoomSnapshot(roomID string, h RoomHashes) *schemas.RoomSnapshot {
	s := &schemas.RoomSnapshot{RoomID: roomID, Name: roomID, Members: []schemas.Member{},
		ActiveUploads: []schemas.Upload{}, Files: []schemas.File{}}
	for k, v := range h.Room {
		switch k {
		case "name":
			if v != "" {
				s.Name = v
			}
		case "isLocked":
			s.IsLocked = v == "true"
		case "lockedBy":
			s.LockedBy = v
		case "lockedByName":
			s.LockedByName = v
		case "lockedAt":
			s.LockedAt = v
		case "lockReason":
			s.LockReason = v
		case "lastActivity":
			s.LastActivity = v
		}
	}
	seen := map[string]int{}
	for _, v := range h.Sockets {
		so, ok := ParseRoomSocket(v)
		if !ok {
			continue
		}
		if i, ok := seen[so.UserID]; ok {
			s.Members[i].JoinedAt = min(s.Members[i].JoinedAt, so.JoinedAt)
			continue
		}
		seen[so.UserID] = len(s.Members)
		s.Members = append(s.Members, schemas.Member{UserID: so.UserID, JoinedAt: so.JoinedAt, UserName: so.UserName})
	}
	sort.Slice(s.Members, func(i, j int) bool {
		a, b := s.Members[i], s.Members[j]
		return a.JoinedAt < b.JoinedAt || a.JoinedAt == b.JoinedAt && a.UserID < b.UserID
	})
	for _, v := range h.Uploads {
		var u schemas.Upload
		if json.Unmarshal([]byte(v), &u) == nil {
			s.ActiveUploads = append(s.ActiveUploads, u)
		}
	}
	sort.Slice(s.ActiveUploads, func(i, j int) bool { return s.ActiveUploads[i].UploadID < s.ActiveUploads[j].UploadID })
	for _, v := range h.Files {
		var f schemas.File
		if json.Unmarshal([]byte(v), &f) == nil {
			s.Files = append(s.Files, f)
		}
	}
	sort.Slice(s.Files, func(i, j int) bool {
		a, b := s.Files[i], s.Files[j]
		return a.CreatedAt < b.CreatedAt || a.CreatedAt == b.CreatedAt && a.ID < b.ID
	})
	return s
}

// LimitSnapshot makes s what a join carries: the counts say how many
// members, uploads and files there are, and with limit > 0 each list is
// cut to limit entries (Truncated says so): the earliest joined members,
// the first uploads by id and the most recent files (still oldest
// first).
func LimitSnapshot(s *schemas.RoomSnapshot, limit int) {
	s.MemberCount, s.UploadCount, s.FileCount = len(s.Members), len(s.ActiveUploads), len(s.Files)
	if limit <= 0 {
		return
	}
	if len(s.Members) > limit {
		s.Members, s.Truncated = s.Members[:limit], true
	}
	if len(s.ActiveUploads) > limit {
		s.ActiveUploads, s.Truncated = s.ActiveUploads[:limit], true
	}
	if len(s.Files) > limit {
		s.Files, s.Truncated = s.Files[len(s.Files)-limit:], true
	}
}
