package workers

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

func TestJoinAndLeave(t *testing.T) {
	h := newHarness(t)
	h.apply(h.env(alice, schemas.EventJoinRoom, "r1", schemas.JoinRoomPayload{RoomID: "r1"}, true))
	gs := h.drain("c1", "c2")
	if diff := cmp.Diff([]string{"c1:ack->sA", "c1:user-joined->sA"}, events(gs)); diff != "" {
		t.Fatalf("alice joins (-want,+got):\n%s", diff)
	}
	ack := find(t, gs, "ack").Body
	if ack["ok"] != true || ack["room"].(map[string]any)["members"].([]any)[0].(map[string]any)["userName"] != "Alice" {
		t.Fatalf("join ack lacks the snapshot: %v", ack)
	}

	h.apply(h.env(bob, schemas.EventJoinRoom, "r1", schemas.JoinRoomPayload{RoomID: "r1"}, false))
	gs = h.drain("c1", "c2")
	if diff := cmp.Diff([]string{"c1:user-joined->sA", "c2:room-state->sB", "c2:user-joined->sB"}, events(gs)); diff != "" {
		t.Fatalf("bob joins (-want,+got):\n%s", diff)
	}
	joined := find(t, gs, "user-joined").Body
	if diff := cmp.Diff(map[string]any{"roomId": "r1", "userId": "bob", "userName": "Bob", "joinedAt": "2026-01-02T03:04:07.000Z"}, joined); diff != "" {
		t.Errorf("user-joined payload (-want,+got):\n%s", diff)
	}
	members, _ := h.rdb.SMembers(h.ctx, "t:room:{r1}:users").Result()
	sort.Strings(members)
	if diff := cmp.Diff([]string{"alice", "bob"}, members); diff != "" {
		t.Errorf("room users (-want,+got):\n%s", diff)
	}
	room, _ := h.rdb.HGetAll(h.ctx, "t:room:{r1}").Result()
	if room["activeUsers"] != `["alice","bob"]` || room["isLocked"] != "false" || room["id"] != "r1" || room["lastActivity"] == "" {
		t.Errorf("room hash: %v", room)
	}

	// A second tab of alice joins: no user-joined, she is there already.
	h.apply(h.env(alice2, schemas.EventJoinRoom, "r1", schemas.JoinRoomPayload{RoomID: "r1"}, true))
	if diff := cmp.Diff([]string{"c2:ack->sA2"}, events(h.drain("c1", "c2"))); diff != "" {
		t.Errorf("second tab joins (-want,+got):\n%s", diff)
	}
	// ...and leaves: alice is still in the room through her first tab.
	h.apply(h.env(alice2, schemas.EventLeaveRoom, "r1", schemas.LeaveRoomPayload{RoomID: "r1"}, true))
	if diff := cmp.Diff([]string{"c2:ack->sA2"}, events(h.drain("c1", "c2"))); diff != "" {
		t.Errorf("second tab leaves (-want,+got):\n%s", diff)
	}

	h.apply(h.env(bob, schemas.EventLeaveRoom, "r1", schemas.LeaveRoomPayload{RoomID: "r1"}, false))
	gs = h.drain("c1", "c2")
	if diff := cmp.Diff([]string{"c1:user-left->sA", "c2:user-left->sB"}, events(gs)); diff != "" {
		t.Errorf("bob leaves (-want,+got):\n%s", diff)
	}
	if left := find(t, gs, "user-left").Body; left["reason"] != "left" || left["userName"] != "Bob" {
		t.Errorf("user-left payload: %v", left)
	}
	out := h.apply(h.env(bob, schemas.EventLeaveRoom, "r1", schemas.LeaveRoomPayload{RoomID: "r1"}, false))
	if out.Status != "not_member" {
		t.Errorf("leaving twice: status %q", out.Status)
	}
	if e := find(t, h.drain("c2"), "error").Body; e["code"] != "not_member" {
		t.Errorf("leaving twice: %v", e)
	}
	if n, _ := h.rdb.Exists(h.ctx, "t:user:{bob}:rooms").Result(); n != 0 {
		t.Errorf("user:{bob}:rooms still exists after bob left")
	}
}

func TestLocking(t *testing.T) {
	h := newHarness(t)
	out := h.apply(h.env(alice, schemas.EventLockRoom, "r1", schemas.LockRoomPayload{RoomID: "r1"}, true))
	if out.Status != "not_member" {
		t.Fatalf("lock before join: %q", out.Status)
	}
	h.apply(h.env(alice, schemas.EventJoinRoom, "r1", nil, false))
	h.apply(h.env(bob, schemas.EventJoinRoom, "r1", nil, false))
	h.drain("c1", "c2")

	h.apply(h.env(alice, schemas.EventLockRoom, "r1", schemas.LockRoomPayload{RoomID: "r1", Reason: "editing"}, true))
	gs := h.drain("c1", "c2")
	if diff := cmp.Diff([]string{"c1:ack->sA", "c1:room-locked->sA", "c2:room-locked->sB"}, events(gs)); diff != "" {
		t.Fatalf("lock (-want,+got):\n%s", diff)
	}
	want := map[string]any{"roomId": "r1", "lockedBy": "alice", "lockedByName": "Alice", "lockedAt": "2026-01-02T03:04:09.000Z", "reason": "editing"}
	if diff := cmp.Diff(want, find(t, gs, "room-locked").Body); diff != "" {
		t.Errorf("room-locked payload (-want,+got):\n%s", diff)
	}

	for _, tc := range []struct {
		w      who
		typ    string
		status string
	}{
		{bob, schemas.EventLockRoom, "room_locked"},
		{bob, schemas.EventUnlockRoom, "not_lock_holder"},
		{bob, schemas.EventFileUploadStarted, "room_locked"},
	} {
		payload := map[string]any{"roomId": "r1", "fileId": "f", "uploadId": "f", "fileName": "a.txt", "size": 1}
		out := h.apply(h.env(tc.w, tc.typ, "r1", payload, true))
		if out.Status != tc.status {
			t.Errorf("%s by %s: status %q, want %q", tc.typ, tc.w.user, out.Status, tc.status)
		}
		a := find(t, h.drain("c2"), "ack").Body
		if a["ok"] != false || a["error"].(map[string]any)["code"] != tc.status {
			t.Errorf("%s by %s: ack %v", tc.typ, tc.w.user, a)
		}
	}
	room, _ := h.rdb.HGetAll(h.ctx, "t:room:{r1}").Result()
	if room["isLocked"] != "true" || room["lockedBy"] != "alice" {
		t.Errorf("refusals changed the lock: %v", room)
	}

	h.apply(h.env(alice, schemas.EventUnlockRoom, "r1", schemas.UnlockRoomPayload{RoomID: "r1"}, false))
	gs = h.drain("c1", "c2")
	if diff := cmp.Diff([]string{"c1:room-unlocked->sA", "c2:room-unlocked->sB"}, events(gs)); diff != "" {
		t.Errorf("unlock (-want,+got):\n%s", diff)
	}
	if out := h.apply(h.env(alice, schemas.EventUnlockRoom, "r1", schemas.UnlockRoomPayload{RoomID: "r1"}, false)); out.Status != "not_locked" {
		t.Errorf("unlock twice: %q", out.Status)
	}
}

func TestUploads(t *testing.T) {
	h := newHarness(t)
	h.apply(h.env(alice, schemas.EventJoinRoom, "r1", nil, false))
	h.apply(h.env(bob, schemas.EventJoinRoom, "r1", nil, false))
	h.drain("c1", "c2")

	h.apply(h.env(alice, schemas.EventFileUploadStarted, "r1", schemas.FileUploadStartedPayload{
		FileID: "f1", FileName: "a.pdf", RoomID: "r1", Size: 100, MimeType: "application/pdf", UploadID: "u1"}, true))
	gs := h.drain("c1", "c2")
	if diff := cmp.Diff([]string{"c1:ack->sA", "c1:file-upload-started->sA", "c2:file-upload-started->sB"}, events(gs)); diff != "" {
		t.Fatalf("started (-want,+got):\n%s", diff)
	}
	if a := find(t, gs, "ack").Body; a["uploadId"] != "u1" {
		t.Errorf("started ack: %v", a)
	}

	h.apply(h.env(alice, schemas.EventFileUploadProgress, "r1", schemas.FileUploadProgressPayload{
		FileID: "f1", UploadID: "u1", FileName: "a.pdf", RoomID: "r1", BytesUploaded: 40, TotalBytes: 100, Percentage: 40}, false))
	gs = h.drain("c1", "c2")
	p := find(t, gs, "file-upload-progress").Body
	if p["percentage"] != 40.0 || p["userId"] != "alice" || p["userName"] != "Alice" || p["bytesUploaded"] != 40.0 {
		t.Errorf("progress relay: %v", p)
	}
	prog, _ := h.rdb.HGetAll(h.ctx, "t:upload:{u1}:progress").Result()
	if prog["bytesUploaded"] != "40" || prog["totalBytes"] != "100" || prog["roomId"] != "r1" {
		t.Errorf("progress hash: %v", prog)
	}
	if ttl := h.rdb.TTL(h.ctx, "t:upload:{u1}:progress").Val(); ttl <= 23*time.Hour || ttl > 24*time.Hour {
		t.Errorf("progress TTL %s, want 24h", ttl)
	}
	// Progress changes its own upload's record only; activeUploads lists
	// the upload since it started, and a joiner's snapshot reads the
	// record.
	room, _ := h.rdb.HGet(h.ctx, "t:room:{r1}", "activeUploads").Result()
	if !strings.Contains(room, `"u1":{`) || !strings.Contains(room, `"bytesUploaded":0`) {
		t.Errorf("activeUploads: %s", room)
	}
	dave := who{"dave", "Dave", "sD", "c2"}
	h.apply(h.env(dave, schemas.EventJoinRoom, "r1", schemas.JoinRoomPayload{RoomID: "r1"}, true))
	if ups := find(t, h.drain("c1", "c2"), "ack").Body["room"].(map[string]any)["activeUploads"].([]any); len(ups) != 1 || ups[0].(map[string]any)["bytesUploaded"] != 40.0 {
		t.Errorf("joiner's snapshot of the upload: %v", ups)
	}
	h.apply(h.env(dave, schemas.EventLeaveRoom, "r1", schemas.LeaveRoomPayload{RoomID: "r1"}, false))
	h.drain("c1", "c2")

	// Bob may not report progress on alice's upload.
	if out := h.apply(h.env(bob, schemas.EventFileUploadProgress, "r1", schemas.FileUploadProgressPayload{
		FileID: "f1", UploadID: "u1", FileName: "a.pdf", RoomID: "r1", BytesUploaded: 50, TotalBytes: 100, Percentage: 50}, false)); out.Status != "forbidden" {
		t.Errorf("foreign progress: %q", out.Status)
	}
	h.drain("c1", "c2")

	h.apply(h.env(alice, schemas.EventFileUploadCompleted, "r1", schemas.FileUploadCompletedPayload{
		FileID: "f1", UploadID: "u1", FileName: "a.pdf", RoomID: "r1", Size: 100, MimeType: "application/pdf"}, false))
	gs = h.drain("c1", "c2")
	want := map[string]any{"roomId": "r1", "file": map[string]any{"id": "f1", "name": "a.pdf", "size": 100.0, "mimeType": "application/pdf",
		"uploadedBy": "alice", "uploadedByName": "Alice", "createdAt": "2026-01-02T03:04:13.000Z", "isFolder": false}}
	if diff := cmp.Diff(want, find(t, gs, "file-added").Body); diff != "" {
		t.Errorf("file-added (-want,+got):\n%s", diff)
	}
	if n, _ := h.rdb.Exists(h.ctx, "t:upload:{u1}:progress").Result(); n != 0 {
		t.Error("progress key not deleted on completion")
	}
	if up, _ := h.rdb.HGet(h.ctx, "t:room:{r1}", "activeUploads").Result(); up != "{}" {
		t.Errorf("activeUploads after completion: %s", up)
	}
	// A newcomer sees the file in the snapshot.
	carol := who{"carol", "Carol", "sC", "c1"}
	h.apply(h.env(carol, schemas.EventJoinRoom, "r1", nil, true))
	snap := find(t, h.drain("c1"), "ack").Body["room"].(map[string]any)
	if files := snap["files"].([]any); len(files) != 1 || files[0].(map[string]any)["id"] != "f1" {
		t.Errorf("snapshot files: %v", snap["files"])
	}
}

// TestIdempotent applies entries again, as a redelivery after a crash does:
// the state changes once, and the last entry's events are emitted again
// identically (connectors drop them by source id) while older ones emit
// nothing.
func TestIdempotent(t *testing.T) {
	h := newHarness(t)
	j := h.env(alice, schemas.EventJoinRoom, "r1", nil, true)
	h.apply(j)
	first := h.drain("c1")
	out := h.apply(j)
	again := h.drain("c1")
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("redelivered last entry emits differently (-first,+again):\n%s", diff)
	}
	if out.Status != "ok" {
		t.Errorf("redelivery status %q", out.Status)
	}
	lock := h.env(alice, schemas.EventLockRoom, "r1", schemas.LockRoomPayload{RoomID: "r1"}, false)
	h.apply(lock)
	h.drain("c1")
	if out := h.apply(j); out.Status != "dup" {
		t.Errorf("older entry: status %q, want dup", out.Status)
	}
	if gs := h.drain("c1"); len(gs) != 0 {
		t.Errorf("older entry emitted %v", events(gs))
	}
	if n, _ := h.rdb.HLen(h.ctx, "t:room:{r1}:sockets").Result(); n != 1 {
		t.Errorf("sockets in room: %d", n)
	}
	// A command without a socket (an API publish) has no (origin, seq) to
	// be recognised by: only the room's last applied entry id tells that
	// its redelivery after a later entry is old.
	pub := h.apiEnv(schemas.CmdPublish, "r1", "", "app:note", map[string]any{"n": 1})
	h.apply(pub)
	h.apply(h.apiEnv(schemas.CmdPublish, "r1", "", "app:later", map[string]any{"n": 2}))
	h.drain("c1")
	if out := h.apply(pub); out.Status != "dup" {
		t.Errorf("older command without a socket: status %q, want dup", out.Status)
	}
	if gs := h.drain("c1"); len(gs) != 0 {
		t.Errorf("older command without a socket emitted %v", events(gs))
	}
}

// TestRepeatedAppend: the Redis client may append an event twice when the
// reply to the first XADD is lost (Redis applied it, then the connection
// broke). The copy has a new entry id, behind other sockets' events; it is
// applied once and emits nothing the second time.
func TestRepeatedAppend(t *testing.T) {
	h := newHarness(t)
	h.apply(h.env(alice, schemas.EventJoinRoom, "r1", nil, false))
	h.apply(h.env(bob, schemas.EventJoinRoom, "r1", nil, false))
	h.drain("c1", "c2")
	progress := func(pct int) *streams.Envelope {
		return h.env(alice, schemas.EventFileUploadProgress, "r1", schemas.FileUploadProgressPayload{
			FileID: "f1", UploadID: "u1", FileName: "a.pdf", RoomID: "r1", BytesUploaded: int64(pct), TotalBytes: 100, Percentage: float64(pct)}, true)
	}
	h.apply(h.env(alice, schemas.EventFileUploadStarted, "r1", schemas.FileUploadStartedPayload{
		FileID: "f1", FileName: "a.pdf", RoomID: "r1", Size: 100, MimeType: "application/pdf", UploadID: "u1"}, false))
	p40 := progress(40)
	h.apply(p40)
	h.apply(h.env(bob, schemas.EventLockRoom, "r0", schemas.LockRoomPayload{RoomID: "r0"}, false)) // another room
	bobsJoin := h.env(bob, schemas.EventJoinRoom, "r1", nil, false)
	h.apply(bobsJoin) // bob again, in between
	h.drain("c1", "c2")

	if out := h.apply(h.again(p40)); out.Status != "dup" {
		t.Errorf("repeated progress: status %q, want dup", out.Status)
	}
	if gs := h.drain("c1", "c2"); len(gs) != 0 {
		t.Errorf("repeated progress emitted %v", events(gs))
	}
	if out := h.apply(h.again(bobsJoin)); out.Status != "dup" {
		t.Errorf("repeated join: status %q, want dup", out.Status)
	}
	// Alice's next event goes through, and so does one from her socket's
	// next incarnation (a reconnection starts numbering again).
	if out := h.apply(progress(50)); out.Status != "ok" {
		t.Errorf("next progress: status %q", out.Status)
	}
	next := progress(60)
	next.Origin, next.Seq = "o-sA-reconnected", 1
	if out := h.apply(next); out.Status != "ok" {
		t.Errorf("progress from a new incarnation: status %q", out.Status)
	}
	gs := h.drain("c1", "c2")
	if diff := cmp.Diff([]string{"c1:ack->sA", "c1:ack->sA", "c1:file-upload-progress->sA", "c1:file-upload-progress->sA",
		"c2:file-upload-progress->sB", "c2:file-upload-progress->sB"}, events(gs)); diff != "" {
		t.Errorf("after the repeat (-want,+got):\n%s", diff)
	}
	if got := h.rdb.HGet(h.ctx, "t:upload:{u1}:progress", "bytesUploaded").Val(); got != "60" {
		t.Errorf("progress hash at %s, want 60", got)
	}
}

// TestSeqPruning: a room remembers the last number of every socket that
// sent it something in the last ten minutes, no more.
func TestSeqPruning(t *testing.T) {
	h := newHarness(t)
	start := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC).UnixMilli()
	apply := func(i int, ms int64) {
		w := who{fmt.Sprintf("u%d", i), "U", fmt.Sprintf("s%d", i), "c1"}
		e := h.env(w, schemas.EventJoinRoom, "r1", nil, false)
		e.ID = fmt.Sprintf("%d-%d", ms, i)
		h.apply(e)
	}
	for i := range 100 {
		apply(i, start)
	}
	// Ten minutes and more later, 100 other sockets: the first ones'
	// numbers go once the hash has doubled.
	later := start + 11*60*1000
	for i := 100; i < 300; i++ {
		apply(i, later)
	}
	fields, err := h.rdb.HKeys(h.ctx, "t:room:{r1}:applied").Result()
	if err != nil {
		t.Fatal(err)
	}
	old, recent := 0, 0
	for _, f := range fields {
		var n int
		if _, err := fmt.Sscanf(f, "s:s%d", &n); err != nil {
			continue
		}
		if n < 100 {
			old++
		} else {
			recent++
		}
	}
	if old != 0 || recent != 200 {
		t.Errorf("remembered %d stale and %d recent sockets, want 0 and 200 (fields: %d)", old, recent, len(fields))
	}
}

func TestFencing(t *testing.T) {
	h := newHarness(t)
	e := h.env(alice, schemas.EventJoinRoom, "r1", nil, false)
	if _, err := h.a.Apply(h.ctx, 0, 5, e); err != nil {
		t.Fatal(err)
	}
	late := h.env(alice, schemas.EventLockRoom, "r1", schemas.LockRoomPayload{RoomID: "r1"}, false)
	if _, err := h.a.Apply(h.ctx, 0, 4, late); !errors.Is(err, ErrFenced) {
		t.Fatalf("apply under an older lease: %v, want ErrFenced", err)
	}
	if locked, _ := h.rdb.HGet(h.ctx, "t:room:{r1}", "isLocked").Result(); locked != "false" {
		t.Error("a fenced write changed the room")
	}
}

func TestDisconnectReleasesLockAfterGrace(t *testing.T) {
	h := newHarness(t)
	h.apply(h.env(alice, schemas.EventJoinRoom, "r1", nil, false))
	h.apply(h.env(bob, schemas.EventJoinRoom, "r1", nil, false))
	h.apply(h.env(alice, schemas.EventLockRoom, "r1", schemas.LockRoomPayload{RoomID: "r1"}, false))
	h.drain("c1", "c2")

	d := h.env(alice, schemas.CmdDisconnect, "r1", nil, false)
	d.Reason = schemas.ReasonConnectorLost
	h.apply(d)
	gs := h.drain("c1", "c2")
	if diff := cmp.Diff([]string{"c2:user-left->sB"}, events(gs)); diff != "" {
		t.Fatalf("disconnect (-want,+got):\n%s", diff)
	}
	if r := find(t, gs, "user-left").Body["reason"]; r != "connector_lost" {
		t.Errorf("reason %v", r)
	}
	score, err := h.rdb.ZScore(h.ctx, "t:locks:orphaned", "r1").Result()
	if err != nil || int64(score) != d.At.Add(30*time.Second).UnixMilli() {
		t.Fatalf("orphaned lock not scheduled at +grace: %v %v", score, err)
	}
	exp := h.env(who{}, schemas.CmdLockExpire, "r1", nil, false)
	exp.Reason = ReasonLockHolderLeft
	h.apply(exp)
	gs = h.drain("c1", "c2")
	if diff := cmp.Diff([]string{"c2:room-unlocked->sB"}, events(gs)); diff != "" {
		t.Fatalf("lock expiry (-want,+got):\n%s", diff)
	}
	if r := find(t, gs, "room-unlocked").Body["reason"]; r != ReasonLockHolderLeft {
		t.Errorf("unlock reason %v", r)
	}
}

func TestLockExpireKeepsLockOfReturnedHolder(t *testing.T) {
	h := newHarness(t)
	h.apply(h.env(alice, schemas.EventJoinRoom, "r1", nil, false))
	h.apply(h.env(alice, schemas.EventLockRoom, "r1", schemas.LockRoomPayload{RoomID: "r1"}, false))
	h.apply(h.env(alice, schemas.CmdDisconnect, "r1", nil, false))
	h.apply(h.env(alice2, schemas.EventJoinRoom, "r1", nil, false)) // back within the grace period
	h.drain("c1", "c2")
	if out := h.apply(h.env(who{}, schemas.CmdLockExpire, "r1", nil, false)); out.Status != "noop" {
		t.Errorf("lock-expire with the holder back: %q", out.Status)
	}
	if locked, _ := h.rdb.HGet(h.ctx, "t:room:{r1}", "isLocked").Result(); locked != "true" {
		t.Error("lock released although its holder came back")
	}
}

func TestDisconnectFromOldConnectorIgnoredAfterMove(t *testing.T) {
	h := newHarness(t)
	h.apply(h.env(alice, schemas.EventJoinRoom, "r1", nil, false))
	h.apply(h.env(bob, schemas.EventJoinRoom, "r1", nil, false))
	h.drain("c1", "c2", "c3")
	mv := h.env(alice, schemas.CmdMove, "r1", nil, false)
	mv.Target = "c3"
	h.apply(mv)
	if diff := cmp.Diff([]string{"c3:$moved->sA"}, events(h.drain("c1", "c2", "c3"))); diff != "" {
		t.Fatalf("move (-want,+got):\n%s", diff)
	}
	// The old connector's late disconnect changes nothing...
	if out := h.apply(h.env(alice, schemas.CmdDisconnect, "r1", nil, false)); out.Status != "noop" {
		t.Errorf("stale disconnect: %q", out.Status)
	}
	// ...and events now go to the new connector.
	h.apply(h.env(bob, schemas.EventLockRoom, "r1", schemas.LockRoomPayload{RoomID: "r1"}, false))
	if diff := cmp.Diff([]string{"c2:room-locked->sB", "c3:room-locked->sA"}, events(h.drain("c1", "c2", "c3"))); diff != "" {
		t.Errorf("after move (-want,+got):\n%s", diff)
	}
}

func TestEmptyRoomExpires(t *testing.T) {
	h := newHarness(t)
	h.apply(h.env(alice, schemas.EventJoinRoom, "r1", nil, false))
	if ttl := h.rdb.TTL(h.ctx, "t:room:{r1}").Val(); ttl != -1 {
		t.Errorf("active room has TTL %s", ttl)
	}
	h.apply(h.env(alice, schemas.EventLeaveRoom, "r1", nil, false))
	if ttl := h.rdb.TTL(h.ctx, "t:room:{r1}").Val(); ttl < 7*24*time.Hour-time.Minute || ttl > 7*24*time.Hour {
		t.Errorf("empty room TTL %s, want 7 days", ttl)
	}
	h.apply(h.env(bob, schemas.EventJoinRoom, "r1", nil, false))
	if ttl := h.rdb.TTL(h.ctx, "t:room:{r1}").Val(); ttl != -1 {
		t.Errorf("room active again but TTL %s", ttl)
	}
}

func TestRoomsOnlyChangesRoomsAndWritesNothingElse(t *testing.T) {
	h := newHarness(t)
	h.a = h.a.RoomsOnly()
	h.apply(h.env(alice, schemas.EventJoinRoom, "r1", schemas.JoinRoomPayload{RoomID: "r1"}, true))
	out := h.apply(h.env(bob, schemas.EventLockRoom, "r1", schemas.LockRoomPayload{RoomID: "r1"}, true))
	if out.Status != string(schemas.CodeNotMember) || !strings.Contains(out.Message, "join room r1 first") {
		t.Errorf("refusal outcome: %+v", out)
	}
	if gs := h.drain("c1", "c2"); len(gs) != 0 {
		t.Errorf("outbound entries written: %v", events(gs))
	}
	if ok, _ := h.rdb.SIsMember(h.ctx, "t:room:{r1}:users", "alice").Result(); !ok {
		t.Errorf("alice's join did not change the room")
	}
	if n, _ := h.rdb.Exists(h.ctx, "t:user:{alice}:rooms").Result(); n != 0 {
		t.Errorf("a side effect outside the room was written")
	}
}

// batchOf makes the entries of one partition's batch.
func batchOf(p int, token int64, envs ...*streams.Envelope) []BatchEntry {
	out := make([]BatchEntry, len(envs))
	for i, e := range envs {
		out[i] = BatchEntry{Partition: p, Token: token, Env: e}
	}
	return out
}

// TestApplyBatchMatchesOneByOne: a batch (two rooms, several entries of
// each, a refusal and a bad payload among them) changes the state and
// delivers exactly what applying its entries one at a time does, in the
// same order per room; the bad entry is left to the caller.
func TestApplyBatchMatchesOneByOne(t *testing.T) {
	build := func(h *harness) []*streams.Envelope {
		var envs []*streams.Envelope
		for _, room := range []string{"r1", "r2"} {
			envs = append(envs, h.env(alice, schemas.EventJoinRoom, room, nil, true), h.env(bob, schemas.EventJoinRoom, room, nil, false))
		}
		envs = append(envs, h.env(alice, schemas.EventFileUploadStarted, "r1", schemas.FileUploadStartedPayload{
			FileID: "f1", FileName: "a.pdf", RoomID: "r1", Size: 100, UploadID: "u1"}, false))
		for pct := 10; pct <= 30; pct += 10 {
			envs = append(envs, h.env(alice, schemas.EventFileUploadProgress, "r1", schemas.FileUploadProgressPayload{
				FileID: "f1", UploadID: "u1", FileName: "a.pdf", RoomID: "r1", BytesUploaded: int64(pct), TotalBytes: 100, Percentage: float64(pct)}, false))
			envs = append(envs, h.env(bob, schemas.EventLockRoom, "r2", schemas.LockRoomPayload{RoomID: "r2"}, true)) // then refused: locked by himself is ok, not a change
		}
		bad := h.env(alice, schemas.EventLockRoom, "r2", nil, true)
		bad.Data = []byte(`{"roomId":`)
		envs = append(envs, bad, h.env(alice, schemas.EventLeaveRoom, "r1", schemas.LeaveRoomPayload{RoomID: "r1"}, false))
		return envs
	}
	one := newHarness(t)
	var wantOut []Outcome
	for _, e := range build(one) {
		out, err := one.a.Apply(one.ctx, 0, 1, e)
		if err != nil {
			out = Outcome{Status: "error"}
		}
		wantOut = append(wantOut, out)
	}
	want := one.drain("c1", "c2")

	batch := newHarness(t)
	envs := build(batch)
	res := batch.a.ApplyBatch(batch.ctx, batchOf(0, 1, envs...), BatchOptions{})
	applied, outs := res.Applied, res.Outcomes
	if err := res.Stopped[0]; !errors.Is(err, ErrPermanent) {
		t.Fatalf("batch error %v, want the bad entry's ErrPermanent", err)
	}
	var gotOut []Outcome
	for i, e := range envs {
		if !applied[i] {
			// What the worker does with the rest: one at a time, in order.
			out, err := batch.a.Apply(batch.ctx, 0, 1, e)
			if err != nil {
				out = Outcome{Status: "error"}
			}
			outs[i] = out
		}
		gotOut = append(gotOut, outs[i])
	}
	if diff := cmp.Diff(wantOut, gotOut); diff != "" {
		t.Errorf("outcomes (-one by one,+batch):\n%s", diff)
	}
	// Order holds per room (and per connector); rooms interleave
	// differently.
	perRoom := func(gs []got) []got {
		room := func(g got) string { r, _ := g.Body["roomId"].(string); return g.Conn + "/" + r }
		sort.SliceStable(gs, func(i, j int) bool { return room(gs[i]) < room(gs[j]) })
		return gs
	}
	if diff := cmp.Diff(perRoom(want), perRoom(batch.drain("c1", "c2"))); diff != "" {
		t.Errorf("deliveries (-one by one,+batch):\n%s", diff)
	}
	for _, key := range []string{"t:room:{r1}:uploads", "t:room:{r2}", "t:room:{r1}:conns", "t:room:{r2}:conns"} {
		w, _ := one.rdb.HGetAll(one.ctx, key).Result()
		g, _ := batch.rdb.HGetAll(batch.ctx, key).Result()
		if diff := cmp.Diff(w, g); diff != "" {
			t.Errorf("%s (-one by one,+batch):\n%s", key, diff)
		}
	}
}

// TestApplyBatchCrashBeforeCommit: a worker that ran a wave's scripts and
// died before writing their events. The next owner applies the same
// entries again: each room's last applied entry re-sends its events, so
// nothing is lost, and nothing is applied twice.
func TestApplyBatchCrashBeforeCommit(t *testing.T) {
	h := newHarness(t)
	h.apply(h.env(alice, schemas.EventJoinRoom, "r1", nil, false))
	h.apply(h.env(bob, schemas.EventJoinRoom, "r2", nil, false))
	h.drain("c1", "c2")
	l1 := h.env(alice, schemas.EventLockRoom, "r1", schemas.LockRoomPayload{RoomID: "r1"}, false)
	l2 := h.env(bob, schemas.EventLockRoom, "r2", schemas.LockRoomPayload{RoomID: "r2"}, false)
	// The crashed worker: scripts of the wave ran, nothing was written.
	crashed := h.a.RoomsOnly()
	if res := crashed.ApplyBatch(h.ctx, batchOf(0, 1, l1, l2), BatchOptions{}); res.Stopped != nil {
		t.Fatal(res.Stopped)
	}
	if gs := h.drain("c1", "c2"); len(gs) != 0 {
		t.Fatalf("rooms-only wrote %v", events(gs))
	}
	// Redelivered to a worker that writes the batch's events in its next
	// round trip (DeferLastWrites): nothing goes out until it does.
	res := h.a.ApplyBatch(h.ctx, batchOf(0, 2, l1, l2), BatchOptions{DeferLastWrites: true})
	applied, outs, pending := res.Applied, res.Outcomes, res.Deferred
	if res.Stopped != nil || !applied[0] || !applied[1] || pending == nil {
		t.Fatalf("redelivered batch: %v %v pending %v", applied, res.Stopped, pending)
	}
	if gs := h.drain("c1", "c2"); len(gs) != 0 {
		t.Fatalf("deferred writes went out early: %v", events(gs))
	}
	var check func() error
	if _, err := h.rdb.Pipelined(h.ctx, func(p redis.Pipeliner) error {
		check = pending.Queue(h.ctx, p)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := check(); err != nil {
		t.Errorf("queued writes: %v", err)
	}
	if outs[0].Status != "ok" || outs[1].Status != "ok" {
		t.Errorf("outcomes %+v", outs)
	}
	if diff := cmp.Diff([]string{"c1:room-locked->sA", "c2:room-locked->sB"}, events(h.drain("c1", "c2"))); diff != "" {
		t.Errorf("events after the crash (-want,+got):\n%s", diff)
	}
}

// TestApplyBatchStopsWhenFenced: a newer lease owner wrote to a room; the
// batch stops with ErrFenced and applies nothing of that room.
func TestApplyBatchStopsWhenFenced(t *testing.T) {
	h := newHarness(t)
	h.apply(h.env(alice, schemas.EventJoinRoom, "r1", nil, false))
	if _, err := h.a.Apply(h.ctx, 0, 5, h.env(alice, schemas.EventLockRoom, "r1", schemas.LockRoomPayload{RoomID: "r1"}, false)); err != nil {
		t.Fatal(err)
	}
	h.drain("c1")
	un := h.env(alice, schemas.EventUnlockRoom, "r1", schemas.UnlockRoomPayload{RoomID: "r1"}, false)
	res := h.a.ApplyBatch(h.ctx, batchOf(0, 4, un), BatchOptions{DeferLastWrites: true})
	if err := res.Stopped[0]; !errors.Is(err, ErrFenced) || res.Applied[0] || res.Deferred != nil {
		t.Fatalf("stale token: applied %v, err %v", res.Applied, err)
	}
	if locked, _ := h.rdb.HGet(h.ctx, "t:room:{r1}", "isLocked").Result(); locked != "true" {
		t.Errorf("stale owner unlocked the room")
	}
}

// TestApplyBatchAcrossPartitions: entries of several partitions applied
// as one batch. A partition that stops (fenced here, with an entry of a
// room after the fenced one) stops alone: the other partitions' entries
// are all applied, in order per room, and the stopped partition's later
// entries are left to the caller, unapplied.
func TestApplyBatchAcrossPartitions(t *testing.T) {
	h := newHarness(t)
	for _, room := range []string{"r1", "r2"} {
		h.apply(h.env(alice, schemas.EventJoinRoom, room, nil, false))
	}
	// r2 (partition 1) was written under token 5: token 4 is stale there.
	if _, err := h.a.Apply(h.ctx, 1, 5, h.env(alice, schemas.EventLockRoom, "r2", schemas.LockRoomPayload{RoomID: "r2"}, false)); err != nil {
		t.Fatal(err)
	}
	h.drain("c1")
	lock1 := h.env(alice, schemas.EventLockRoom, "r1", schemas.LockRoomPayload{RoomID: "r1"}, false)
	un2 := h.env(alice, schemas.EventUnlockRoom, "r2", schemas.UnlockRoomPayload{RoomID: "r2"}, false)
	un1 := h.env(alice, schemas.EventUnlockRoom, "r1", schemas.UnlockRoomPayload{RoomID: "r1"}, false)
	lock2 := h.env(alice, schemas.EventLockRoom, "r2", schemas.LockRoomPayload{RoomID: "r2"}, false)
	entries := []BatchEntry{
		{Partition: 0, Token: 1, Env: lock1}, {Partition: 1, Token: 4, Env: un2},
		{Partition: 0, Token: 1, Env: un1}, {Partition: 1, Token: 4, Env: lock2},
	}
	res := h.a.ApplyBatch(h.ctx, entries, BatchOptions{DeferLastWrites: true})
	if diff := cmp.Diff([]bool{true, false, true, false}, res.Applied); diff != "" {
		t.Errorf("applied (-want,+got):\n%s", diff)
	}
	if err := res.Stopped[1]; !errors.Is(err, ErrFenced) {
		t.Errorf("partition 1: %v, want ErrFenced", err)
	}
	if _, ok := res.Stopped[0]; ok || len(res.Stopped) != 1 {
		t.Errorf("stopped %v, want partition 1 only", res.Stopped)
	}
	if res.Deferred != nil {
		t.Error("writes deferred although a partition stopped")
	}
	if diff := cmp.Diff([]string{"c1:room-locked->sA", "c1:room-unlocked->sA"}, events(h.drain("c1"))); diff != "" {
		t.Errorf("partition 0's events (-want,+got):\n%s", diff)
	}
	if locked, _ := h.rdb.HGet(h.ctx, "t:room:{r2}", "isLocked").Result(); locked != "true" {
		t.Errorf("the fenced partition's room changed")
	}
}

// TestRoomFromBeforeConnectorCounts: a room written before room:{R}:conns
// existed gets its counts rebuilt from its sockets the first time an event
// needs them, so its members keep receiving its events.
func TestRoomFromBeforeConnectorCounts(t *testing.T) {
	h := newHarness(t)
	h.apply(h.env(alice, schemas.EventJoinRoom, "r1", nil, false))
	h.apply(h.env(bob, schemas.EventJoinRoom, "r1", nil, false))
	h.drain("c1", "c2")
	h.rdb.Del(h.ctx, "t:room:{r1}:conns")
	h.apply(h.env(alice, schemas.EventLockRoom, "r1", schemas.LockRoomPayload{RoomID: "r1"}, false))
	if diff := cmp.Diff([]string{"c1:room-locked->sA", "c2:room-locked->sB"}, events(h.drain("c1", "c2"))); diff != "" {
		t.Errorf("lock in a room without counts (-want,+got):\n%s", diff)
	}
	h.rdb.Del(h.ctx, "t:room:{r1}:conns")
	h.apply(h.env(bob, schemas.EventLeaveRoom, "r1", schemas.LeaveRoomPayload{RoomID: "r1"}, false))
	h.drain("c1", "c2")
	if got := h.rdb.HGetAll(h.ctx, "t:room:{r1}:conns").Val(); !cmp.Equal(got, map[string]string{"c1": "1"}) {
		t.Errorf("counts after bob left: %v", got)
	}
}

// TestFunctionsAndScriptsAgree: the room code loaded as a function library
// (FCALL, real Redis) and sent as scripts (EVALSHA, as on the embedded
// Redis of roomstream dev) gives the same outcomes, deliveries and state.
func TestFunctionsAndScriptsAgree(t *testing.T) {
	build := func(h *harness) []*streams.Envelope {
		envs := []*streams.Envelope{
			h.env(alice, schemas.EventJoinRoom, "r1", nil, true), h.env(bob, schemas.EventJoinRoom, "r1", nil, true),
			h.env(alice2, schemas.EventJoinRoom, "r1", nil, false),
			h.env(alice, schemas.EventFileUploadStarted, "r1", schemas.FileUploadStartedPayload{
				FileID: "f1", FileName: "a.pdf", RoomID: "r1", Size: 100, UploadID: "u1"}, true),
			h.env(alice, schemas.EventFileUploadProgress, "r1", schemas.FileUploadProgressPayload{
				FileID: "f1", UploadID: "u1", FileName: "a.pdf", RoomID: "r1", BytesUploaded: 50, TotalBytes: 100, Percentage: 50}, false),
			h.env(bob, schemas.EventFileUploadProgress, "r1", schemas.FileUploadProgressPayload{
				FileID: "f1", UploadID: "u1", FileName: "a.pdf", RoomID: "r1", BytesUploaded: 60, TotalBytes: 100, Percentage: 60}, true),
			h.env(bob, schemas.EventLockRoom, "r1", schemas.LockRoomPayload{RoomID: "r1", Reason: "review"}, true),
			h.env(alice, schemas.EventFileUploadCompleted, "r1", schemas.FileUploadCompletedPayload{
				FileID: "f1", UploadID: "u1", FileName: "a.pdf", RoomID: "r1", Size: 100}, true),
			h.env(bob, schemas.EventUnlockRoom, "r1", schemas.UnlockRoomPayload{RoomID: "r1"}, true),
			h.env(alice, schemas.EventFileUploadCompleted, "r1", schemas.FileUploadCompletedPayload{
				FileID: "f1", UploadID: "u1", FileName: "a.pdf", RoomID: "r1", Size: 100}, true),
			h.env(bob, schemas.EventLeaveRoom, "r1", schemas.LeaveRoomPayload{RoomID: "r1"}, true),
		}
		return append(envs, h.again(envs[4]))
	}
	run := func(scriptsOnly bool) (*harness, []Outcome, []got) {
		h := newHarness(t)
		h.a.scripts.noLib = scriptsOnly
		var outs []Outcome
		for _, e := range build(h) {
			outs = append(outs, h.apply(e))
		}
		return h, outs, h.drain("c1", "c2")
	}
	fh, fOut, fGot := run(false)
	sh, sOut, sGot := run(true)
	t.Logf("outcomes %+v, %d deliveries", fOut, len(fGot))
	if diff := cmp.Diff(fOut, sOut); diff != "" {
		t.Errorf("outcomes (-functions,+scripts):\n%s", diff)
	}
	if diff := cmp.Diff(fGot, sGot); diff != "" {
		t.Errorf("deliveries (-functions,+scripts):\n%s", diff)
	}
	for _, key := range []string{"t:room:{r1}", "t:room:{r1}:sockets", "t:room:{r1}:uploads", "t:room:{r1}:files", "t:room:{r1}:conns", "t:room:{r1}:applied"} {
		w, _ := fh.rdb.HGetAll(fh.ctx, key).Result()
		g, _ := sh.rdb.HGetAll(sh.ctx, key).Result()
		if diff := cmp.Diff(w, g); diff != "" {
			t.Errorf("%s (-functions,+scripts):\n%s", key, diff)
		}
	}
	calls := func(h *harness, cmd string) int {
		info, _ := h.rdb.Info(h.ctx, "commandstats").Result()
		for _, line := range strings.Split(info, "\n") {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":calls="); ok {
				n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
				return n
			}
		}
		return 0
	}
	if n := calls(fh, "fcall"); n < len(fOut) {
		t.Errorf("functions run: %d FCALLs for %d entries", n, len(fOut))
	}
	if n, m := calls(sh, "fcall"), calls(sh, "evalsha"); n != 0 || m < len(sOut) {
		t.Errorf("scripts run: %d FCALLs and %d EVALSHAs for %d entries", n, m, len(sOut))
	}
}
