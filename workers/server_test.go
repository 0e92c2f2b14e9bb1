package workers

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

func TestPublishServerEvents(t *testing.T) {
	h := newHarness(t)
	if out := h.apply(h.apiEnv(schemas.CmdPublish, "r1", "", "app:note", map[string]any{"x": 1})); out.Status != "not_found" {
		t.Fatalf("publish to a room that does not exist: %q", out.Status)
	}
	h.apply(h.env(alice, schemas.EventJoinRoom, "r1", nil, false))
	h.apply(h.env(bob, schemas.EventJoinRoom, "r1", nil, false))
	h.apply(h.env(bob, schemas.EventFileUploadStarted, "r1", map[string]any{"roomId": "r1", "fileId": "f1", "fileName": "a.pdf", "size": 10}, false))
	h.drain("c1", "c2")

	out := h.apply(h.apiEnv(schemas.CmdPublish, "r1", "", "app:note", map[string]any{"text": "hello"}))
	gs := h.drain("c1", "c2")
	if diff := cmp.Diff([]string{"c1:app:note->sA", "c2:app:note->sB"}, events(gs)); diff != "" {
		t.Fatalf("custom event (-want,+got):\n%s", diff)
	}
	if out.Status != "ok" || find(t, gs, "app:note").Body["text"] != "hello" {
		t.Errorf("custom event: %+v %v", out, gs)
	}

	// file-added from the backend ends bob's upload and joins the files.
	file := schemas.File{ID: "f1", Name: "a.pdf", Size: 10, MimeType: "application/pdf", UploadedBy: "bob", UploadedByName: "Bob"}
	e := h.apiEnv(schemas.CmdPublish, "r1", "", schemas.EventFileAdded, schemas.FileAddedPayload{File: file})
	e.Target = "f1"
	h.apply(e)
	gs = h.drain("c1", "c2")
	if diff := cmp.Diff([]string{"c1:file-added->sA", "c2:file-added->sB"}, events(gs)); diff != "" {
		t.Fatalf("file-added (-want,+got):\n%s", diff)
	}
	body := find(t, gs, "file-added").Body
	if body["roomId"] != "r1" || body["file"].(map[string]any)["createdAt"] != streams.ISOTime(h.now) {
		t.Errorf("file-added payload: %v", body)
	}
	if n, _ := h.rdb.HLen(h.ctx, "t:room:{r1}:uploads").Result(); n != 0 {
		t.Errorf("the upload the file completes is still active (%d uploads)", n)
	}
	if ok, _ := h.rdb.HExists(h.ctx, "t:room:{r1}:files", "f1").Result(); !ok {
		t.Error("file not in the room's files")
	}
	if n, _ := h.rdb.Exists(h.ctx, "t:upload:{f1}:progress").Result(); n != 0 {
		t.Error("upload:{f1}:progress kept after file-added")
	}
	if au, _ := h.rdb.HGet(h.ctx, "t:room:{r1}", "activeUploads").Result(); au != "{}" {
		t.Errorf("activeUploads %s", au)
	}

	// A publish appended twice under one Idempotency-Key (the API numbers
	// it as a socket event: socket api:<digest>, seq 1) is applied once.
	first := h.apiEnv(schemas.CmdPublish, "r1", "", "app:once", map[string]any{})
	first.SocketID, first.Origin, first.Seq = "api:k1", "k1digest", 1
	h.apply(first)
	h.apply(h.apiEnv(schemas.CmdPublish, "r1", "", "app:between", map[string]any{}))
	if out := h.apply(h.again(first)); out.Status != "dup" {
		t.Errorf("second append of one idempotency key: %q", out.Status)
	}
	if diff := cmp.Diff([]string{"c1:app:between->sA", "c1:app:once->sA", "c2:app:between->sB", "c2:app:once->sB"}, events(h.drain("c1", "c2"))); diff != "" {
		t.Errorf("idempotent publish (-want,+got):\n%s", diff)
	}
}

func TestRemoveMember(t *testing.T) {
	h := newHarness(t)
	h.apply(h.env(alice, schemas.EventJoinRoom, "r1", nil, false))
	h.apply(h.env(alice2, schemas.EventJoinRoom, "r1", nil, false))
	h.apply(h.env(bob, schemas.EventJoinRoom, "r1", nil, false))
	h.apply(h.env(alice, schemas.EventLockRoom, "r1", schemas.LockRoomPayload{RoomID: "r1"}, false))
	h.drain("c1", "c2")

	out := h.apply(h.apiEnv(schemas.CmdRemoveMember, "r1", "alice", "", nil))
	if out.Status != "ok" {
		t.Fatalf("remove: %+v", out)
	}
	gs := h.drain("c1", "c2")
	// Both of alice's sockets hear that she was removed, then leave.
	if diff := cmp.Diff([]string{"c1:user-left->sA", "c2:user-left->sA2,sB"}, events(gs)); diff != "" {
		t.Fatalf("remove (-want,+got):\n%s", diff)
	}
	if body := find(t, gs, "user-left").Body; body["reason"] != "removed" || body["userName"] != "Alice" {
		t.Errorf("user-left %v", body)
	}
	if h.members["c1"]["r1"]["sA"] || h.members["c2"]["r1"]["sA2"] || !h.members["c2"]["r1"]["sB"] {
		t.Errorf("connectors' members after the removal: %v", h.members)
	}
	if in, _ := h.rdb.SIsMember(h.ctx, "t:room:{r1}:users", "alice").Result(); in {
		t.Error("alice still in room:{r1}:users")
	}
	if _, err := h.rdb.ZScore(h.ctx, "t:locks:orphaned", "r1").Result(); err != nil {
		t.Errorf("the removed holder's lock is not waiting for release: %v", err)
	}
	if out := h.apply(h.apiEnv(schemas.CmdRemoveMember, "r1", "alice", "", nil)); out.Status != "not_member" {
		t.Errorf("remove twice: %q", out.Status)
	}
	h.apply(h.env(alice, schemas.EventJoinRoom, "r1", nil, false))
	if in, _ := h.rdb.SIsMember(h.ctx, "t:room:{r1}:users", "alice").Result(); !in {
		t.Error("a removed user cannot join again")
	}
}

func TestOperatorUnlock(t *testing.T) {
	h := newHarness(t)
	if out := h.apply(h.apiEnv(schemas.CmdOperatorUnlock, "r1", "", "", nil)); out.Status != "not_locked" {
		t.Fatalf("operator unlock of an unlocked room: %q", out.Status)
	}
	h.apply(h.env(alice, schemas.EventJoinRoom, "r1", nil, false))
	h.apply(h.env(bob, schemas.EventJoinRoom, "r1", nil, false))
	h.apply(h.env(alice, schemas.EventLockRoom, "r1", schemas.LockRoomPayload{RoomID: "r1"}, false))
	h.drain("c1", "c2")
	if out := h.apply(h.apiEnv(schemas.CmdOperatorUnlock, "r1", "", "", nil)); out.Status != "ok" {
		t.Fatalf("operator unlock: %q", out.Status)
	}
	gs := h.drain("c1", "c2")
	if diff := cmp.Diff([]string{"c1:room-unlocked->sA", "c2:room-unlocked->sB"}, events(gs)); diff != "" {
		t.Fatalf("operator unlock (-want,+got):\n%s", diff)
	}
	want := map[string]any{"roomId": "r1", "unlockedAt": streams.ISOTime(h.now), "reason": "operator"}
	if diff := cmp.Diff(want, find(t, gs, "room-unlocked").Body); diff != "" {
		t.Errorf("room-unlocked (-want,+got):\n%s", diff)
	}
	if v, _ := h.rdb.HGet(h.ctx, "t:room:{r1}", "isLocked").Result(); v != "false" {
		t.Errorf("isLocked %q", v)
	}
}

// TestAPISeqKeptLonger: the room forgets the event numbers of sockets
// silent for ten minutes, but keeps those of HTTP API publishes (socket
// api:<key digest>) as long as their idempotency record may be retried:
// a retry appended eleven minutes on is still a duplicate.
func TestAPISeqKeptLonger(t *testing.T) {
	h := newHarness(t)
	h.apply(h.env(alice, schemas.EventJoinRoom, "r1", nil, false))
	first := h.apiEnv(schemas.CmdPublish, "r1", "", "app:once", map[string]any{})
	first.ID, first.SocketID, first.Origin, first.Seq = "2000-0", "api:k1", "k1digest", 1767225600000000
	if out := h.apply(first); out.Status != "ok" {
		t.Fatalf("publish: %+v", out)
	}
	later := int64(2000 + 11*60*1000)
	for i := range 100 {
		e := h.env(who{fmt.Sprintf("u%d", i), "U", fmt.Sprintf("s%d", i), "c1"}, schemas.EventJoinRoom, "r1", nil, false)
		e.ID = fmt.Sprintf("%d-%d", later, i)
		h.apply(e)
	}
	if ok, _ := h.rdb.HExists(h.ctx, "t:room:{r1}:applied", "s:"+alice.socket).Result(); ok {
		t.Fatal("the room did not prune the seqs of silent sockets: the test proves nothing")
	}
	retry := h.again(first)
	retry.ID = fmt.Sprintf("%d-0", later+1)
	if out := h.apply(retry); out.Status != "dup" {
		t.Errorf("an API publish appended again eleven minutes on: %q, want dup", out.Status)
	}
}
