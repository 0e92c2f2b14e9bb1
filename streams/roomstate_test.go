package streams

import (
	"maps"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/roomstream/roomstream/schemas"
)

// flat flattens key-value pairs as the room scripts do ("k KS v PS k KS v").
func flat(kv ...string) string {
	var items []string
	for i := 0; i+1 < len(kv); i += 2 {
		items = append(items, kv[i]+KeySep+kv[i+1])
	}
	return strings.Join(items, ListSep)
}

// sock is a room:{R}:sockets value.
func sock(conn, user, joinedAt, name string) string {
	return strings.Join([]string{conn, user, joinedAt, name}, FieldSep)
}

func TestParseRoomSocket(t *testing.T) {
	got, ok := ParseRoomSocket(sock("c1", "alice", "2026-01-02T03:04:05.000Z", "Alice "+FieldSep+" B."))
	want := RoomSocket{Connector: "c1", UserID: "alice", JoinedAt: "2026-01-02T03:04:05.000Z", UserName: "Alice " + FieldSep + " B."}
	if !ok || got != want {
		t.Errorf("ParseRoomSocket: %+v %v, want %+v (the name keeps what follows the third separator)", got, ok, want)
	}
	if s, ok := ParseRoomSocket("c1" + FieldSep + "alice" + FieldSep + "2026"); ok {
		t.Errorf("three fields parsed as %+v", s)
	}
}

func TestFlatHash(t *testing.T) {
	var got []string
	for k, v := range FlatHash(flat("b", "2", "a", "1", "c", "")) {
		got = append(got, k+"="+v)
	}
	if diff := cmp.Diff([]string{"b=2", "a=1", "c="}, got); diff != "" {
		t.Errorf("FlatHash (-want +got):\n%s", diff)
	}
	for k, v := range FlatHash("") {
		t.Errorf("the empty hash yielded %q=%q", k, v)
	}
}

// TestDecodeRoomSnapshot: one decoder for the join's snapshot (flattened
// hashes, cut to the snapshot limit) and the server API's room read
// (HGETALL maps, whole): members one per user at their earliest join,
// ordered; records that do not parse skipped; the limit keeps the
// earliest members, the first uploads and the most recent files.
func TestDecodeRoomSnapshot(t *testing.T) {
	room := []string{"id", "r1", "name", "Room One", "isLocked", "true", "lockedBy", "bob", "lockedByName", "Bob",
		"lockedAt", "2026-01-02T00:00:09.000Z", "lockReason", "mine", "lastActivity", "2026-01-02T00:00:10.000Z", "activeUsers", "[]"}
	sockets := []string{
		"s1", sock("c1", "bob", "2026-01-02T00:00:03.000Z", "Bob"),
		"s2", sock("c2", "alice", "2026-01-02T00:00:02.000Z", "Alice"),
		"s3", sock("c1", "bob", "2026-01-02T00:00:01.000Z", "Bob"), // bob's earlier socket
		"s4", "c1" + FieldSep + "broken",
		"s5", sock("c2", "carol", "2026-01-02T00:00:02.000Z", "Carol"),
	}
	uploads := []string{"u2", `{"uploadId":"u2","fileId":"f2"}`, "u1", `{"uploadId":"u1","fileId":"f1"}`, "u3", `{not json`}
	files := []string{"f2", `{"id":"f2","createdAt":"2026-01-02T00:00:05.000Z"}`, "f1", `{"id":"f1","createdAt":"2026-01-02T00:00:04.000Z"}`,
		"f3", `{"id":"f3","createdAt":"2026-01-02T00:00:05.000Z"}`}
	whole := &schemas.RoomSnapshot{RoomID: "r1", Name: "Room One", IsLocked: true, LockedBy: "bob", LockedByName: "Bob",
		LockedAt: "2026-01-02T00:00:09.000Z", LockReason: "mine", LastActivity: "2026-01-02T00:00:10.000Z",
		Members: []schemas.Member{
			{UserID: "bob", UserName: "Bob", JoinedAt: "2026-01-02T00:00:01.000Z"},
			{UserID: "alice", UserName: "Alice", JoinedAt: "2026-01-02T00:00:02.000Z"},
			{UserID: "carol", UserName: "Carol", JoinedAt: "2026-01-02T00:00:02.000Z"},
		},
		ActiveUploads: []schemas.Upload{{UploadID: "u1", FileID: "f1"}, {UploadID: "u2", FileID: "f2"}},
		Files:         []schemas.File{{ID: "f1", CreatedAt: "2026-01-02T00:00:04.000Z"}, {ID: "f2", CreatedAt: "2026-01-02T00:00:05.000Z"}, {ID: "f3", CreatedAt: "2026-01-02T00:00:05.000Z"}},
	}
	toMap := func(kv []string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}

	// The server API's read: from maps, every entry, no counts.
	got := DecodeRoomSnapshot("r1", RoomHashes{Room: maps.All(toMap(room)), Sockets: maps.All(toMap(sockets)),
		Uploads: maps.All(toMap(uploads)), Files: maps.All(toMap(files))})
	if diff := cmp.Diff(whole, got); diff != "" {
		t.Errorf("from maps (-want +got):\n%s", diff)
	}

	// A join's snapshot: from flattened hashes, counts set, lists cut.
	got = DecodeRoomSnapshot("r1", RoomHashes{Room: FlatHash(flat(room...)), Sockets: FlatHash(flat(sockets...)),
		Uploads: FlatHash(flat(uploads...)), Files: FlatHash(flat(files...))})
	LimitSnapshot(got, 2)
	cut := *whole
	cut.Members, cut.ActiveUploads, cut.Files = whole.Members[:2], whole.ActiveUploads, whole.Files[1:]
	cut.MemberCount, cut.UploadCount, cut.FileCount, cut.Truncated = 3, 2, 3, true
	if diff := cmp.Diff(&cut, got); diff != "" {
		t.Errorf("flattened, limit 2 (-want +got):\n%s", diff)
	}

	// Within the limit: every entry, the counts, no Truncated.
	got = DecodeRoomSnapshot("r1", RoomHashes{Room: FlatHash(flat(room...)), Sockets: FlatHash(flat(sockets...)),
		Uploads: FlatHash(flat(uploads...)), Files: FlatHash(flat(files...))})
	LimitSnapshot(got, 100)
	counted := *whole
	counted.MemberCount, counted.UploadCount, counted.FileCount = 3, 2, 3
	if diff := cmp.Diff(&counted, got); diff != "" {
		t.Errorf("flattened, limit 100 (-want +got):\n%s", diff)
	}

	// An empty room hash (or one without a name): named by its id, empty
	// lists rather than null ones.
	got = DecodeRoomSnapshot("r2", RoomHashes{Room: FlatHash(flat("name", "")), Sockets: FlatHash(""), Uploads: FlatHash(""), Files: FlatHash("")})
	empty := &schemas.RoomSnapshot{RoomID: "r2", Name: "r2", Members: []schemas.Member{}, ActiveUploads: []schemas.Upload{}, Files: []schemas.File{}}
	if diff := cmp.Diff(empty, got); diff != "" {
		t.Errorf("empty room (-want +got):\n%s", diff)
	}
}
