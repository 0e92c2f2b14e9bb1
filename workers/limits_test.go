package workers

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// refused checks that the sender heard code: in its ack when it asked for
// one, else in an `error` event; and that nothing else went out.
func refused(t *testing.T, h *harness, out Outcome, code schemas.Code, msg string, conns ...string) {
	t.Helper()
	if out.Status != string(code) || !strings.Contains(out.Message, msg) {
		t.Errorf("outcome %+v, want %s with %q", out, code, msg)
	}
	gs := h.drain(conns...)
	if len(gs) != 1 {
		t.Fatalf("a refusal sent %v, want one answer to the sender", events(gs))
	}
	body := gs[0].Body
	if gs[0].Event == "ack" {
		if body["ok"] != false {
			t.Fatalf("ack %v", body)
		}
		body = body["error"].(map[string]any)
	} else if gs[0].Event != "error" {
		t.Fatalf("refusal sent as %s", gs[0].Event)
	}
	if body["code"] != string(code) || !strings.Contains(body["message"].(string), msg) {
		t.Errorf("the sender heard %v, want %s with %q", body, code, msg)
	}
}

func started(room, upload, file string) schemas.FileUploadStartedPayload {
	return schemas.FileUploadStartedPayload{FileID: file, UploadID: upload, FileName: file + ".bin", RoomID: room, Size: 10}
}

func completed(room, upload, file string) schemas.FileUploadCompletedPayload {
	return schemas.FileUploadCompletedPayload{FileID: file, UploadID: upload, FileName: file + ".bin", RoomID: room, Size: 10}
}

func progressed(room, upload, file string, n int64) schemas.FileUploadProgressPayload {
	return schemas.FileUploadProgressPayload{FileID: file, UploadID: upload, FileName: file + ".bin", RoomID: room,
		BytesUploaded: n, TotalBytes: 10, Percentage: float64(n) * 10}
}

func TestRoomFull(t *testing.T) {
	h := limited(t, Limits{RoomMaxMembers: 2})
	carol := who{"carol", "Carol", "sC", "c1"}
	h.apply(h.env(alice, schemas.EventJoinRoom, "r1", nil, false))
	h.apply(h.env(bob, schemas.EventJoinRoom, "r1", nil, false))
	h.drain("c1", "c2")

	refused(t, h, h.apply(h.env(carol, schemas.EventJoinRoom, "r1", nil, true)), schemas.CodeRoomFull, "room r1 is full: it holds 2 users at most", "c1", "c2")
	refused(t, h, h.apply(h.env(carol, schemas.EventJoinRoom, "r1", nil, false)), schemas.CodeRoomFull, "2 users at most", "c1", "c2")
	if n := h.rdb.SCard(h.ctx, "t:room:{r1}:users").Val(); n != 2 {
		t.Errorf("room holds %d users after refusals", n)
	}
	if diff := cmp.Diff([]string{"c1:r1:sC", "c1:r1:sC"}, h.refusedJoins); diff != "" {
		t.Errorf("connectors told of the refused joins (-want,+got):\n%s", diff)
	}
	if ok := h.rdb.HExists(h.ctx, "t:room:{r1}:sockets", "sC").Val(); ok {
		t.Error("the refused socket is in the room")
	}
	// A user already present opens another tab: not a new member.
	if out := h.apply(h.env(alice2, schemas.EventJoinRoom, "r1", nil, true)); out.Status != "ok" {
		t.Errorf("second tab of a member in a full room: %+v", out)
	}
	h.drain("c1", "c2")
	// Once someone leaves, there is room again.
	h.apply(h.env(bob, schemas.EventLeaveRoom, "r1", nil, false))
	h.drain("c1", "c2")
	if out := h.apply(h.env(carol, schemas.EventJoinRoom, "r1", nil, true)); out.Status != "ok" {
		t.Errorf("join after a member left: %+v", out)
	}
}

// TestRepeatedJoinIsCheap: a socket joining a room it is in already gets
// a small ack (no snapshot through the outbound stream) or nothing, and
// the script reads nothing that grows with the room.
func TestRepeatedJoinIsCheap(t *testing.T) {
	h := newHarness(t)
	h.apply(h.env(alice, schemas.EventJoinRoom, "r1", nil, true))
	h.apply(h.env(bob, schemas.EventJoinRoom, "r1", nil, false))
	for i := range 20 {
		h.apply(h.env(bob, schemas.EventFileUploadStarted, "r1", started("r1", fmt.Sprint("u", i), fmt.Sprint("f", i)), false))
		h.apply(h.env(bob, schemas.EventFileUploadCompleted, "r1", completed("r1", fmt.Sprint("u", i), fmt.Sprint("f", i)), false))
	}
	h.drain("c1", "c2")
	before := h.rdb.HGetAll(h.ctx, "t:room:{r1}").Val()
	outLen := h.rdb.XLen(h.ctx, "t:out:{c1}").Val()

	resetStats(t, h)
	out := h.apply(h.env(alice, schemas.EventJoinRoom, "r1", schemas.JoinRoomPayload{RoomID: "r1"}, true))
	gs := h.drain("c1", "c2")
	if diff := cmp.Diff([]string{"c1:ack->sA"}, events(gs)); diff != "" {
		t.Fatalf("repeated join with ack (-want,+got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"ok": true, "alreadyJoined": true}, gs[0].Body); diff != "" {
		t.Errorf("repeated join's ack (-want,+got):\n%s", diff)
	}
	if out.Status != "noop" {
		t.Errorf("repeated join: status %q", out.Status)
	}
	h.apply(h.env(alice, schemas.EventJoinRoom, "r1", schemas.JoinRoomPayload{RoomID: "r1"}, false))
	if gs := h.drain("c1", "c2"); len(gs) != 0 {
		t.Errorf("repeated join without ack sent %v", events(gs))
	}
	if n := h.rdb.XLen(h.ctx, "t:out:{c1}").Val(); n != outLen+1 {
		t.Errorf("two repeated joins wrote %d outbound entries, want 1 (the ack)", n-outLen)
	}
	if used := roomReads(t, h); len(used) != 0 {
		t.Errorf("a repeated join read the whole room: %v", used)
	}
	if diff := cmp.Diff(before, h.rdb.HGetAll(h.ctx, "t:room:{r1}").Val()); diff != "" {
		t.Errorf("a repeated join changed the room (-before,+after):\n%s", diff)
	}

	// The same socket joining through another connector (it recovered
	// there) is a move: that connector gets the snapshot.
	moved := alice
	moved.conn = "c3"
	h.apply(h.env(moved, schemas.EventJoinRoom, "r1", nil, true))
	if a := find(t, h.drain("c1", "c2", "c3"), "ack"); a.Conn != "c3" || a.Body["room"] == nil {
		t.Errorf("join from another connector: %+v", a)
	}
}

// TestSnapshotCapped: a join snapshot lists at most SnapshotLimit entries
// of each list, with counts of all and a flag.
func TestSnapshotCapped(t *testing.T) {
	h := limited(t, Limits{SnapshotLimit: 2})
	users := []who{alice, bob, {"carol", "Carol", "sC", "c1"}}
	for _, w := range users {
		h.apply(h.env(w, schemas.EventJoinRoom, "r1", nil, false))
	}
	for i := range 3 {
		up, f := fmt.Sprint("u", i), fmt.Sprint("f", i)
		h.apply(h.env(alice, schemas.EventFileUploadStarted, "r1", started("r1", up, f), false))
		h.apply(h.env(alice, schemas.EventFileUploadCompleted, "r1", completed("r1", up, f), false))
		h.apply(h.env(bob, schemas.EventFileUploadStarted, "r1", started("r1", "b"+up, "b"+f), false))
	}
	h.drain("c1", "c2")
	dave := who{"dave", "Dave", "sD", "c1"}
	h.apply(h.env(dave, schemas.EventJoinRoom, "r1", nil, true))
	var snap schemas.RoomSnapshot
	if err := remarshal(find(t, h.drain("c1"), "ack").Body["room"], &snap); err != nil {
		t.Fatal(err)
	}
	var members, files, ups []string
	for _, m := range snap.Members {
		members = append(members, m.UserID)
	}
	for _, f := range snap.Files {
		files = append(files, f.ID)
	}
	for _, u := range snap.ActiveUploads {
		ups = append(ups, u.UploadID)
	}
	got := fmt.Sprint(members, files, ups, snap.MemberCount, snap.FileCount, snap.UploadCount, snap.Truncated)
	if want := "[alice bob] [f1 f2] [bu0 bu1] 4 3 3 true"; got != want {
		t.Errorf("snapshot %s, want %s", got, want)
	}

	// Within the limit: every entry, counts, no flag.
	h2 := newHarness(t)
	h2.apply(h2.env(alice, schemas.EventJoinRoom, "r1", nil, true))
	body := find(t, h2.drain("c1"), "ack").Body["room"].(map[string]any)
	if body["memberCount"] != 1.0 || body["fileCount"] != 0.0 || body["uploadCount"] != 0.0 || body["truncated"] != nil {
		t.Errorf("small room's snapshot: %v", body)
	}
}

func TestUploadLimit(t *testing.T) {
	h := limited(t, Limits{RoomMaxUploads: 2})
	h.apply(h.env(alice, schemas.EventJoinRoom, "r1", nil, false))
	h.apply(h.env(bob, schemas.EventJoinRoom, "r1", nil, false))
	h.apply(h.env(alice, schemas.EventFileUploadStarted, "r1", started("r1", "u1", "f1"), false))
	h.apply(h.env(alice, schemas.EventFileUploadStarted, "r1", started("r1", "u2", "f2"), false))
	h.drain("c1", "c2")

	refused(t, h, h.apply(h.env(bob, schemas.EventFileUploadStarted, "r1", started("r1", "u3", "f3"), true)),
		schemas.CodeTooManyUploads, "room r1 has 2 uploads in progress", "c1", "c2")
	// A first progress report starts an upload too: counted the same.
	refused(t, h, h.apply(h.env(bob, schemas.EventFileUploadProgress, "r1", progressed("r1", "u4", "f4", 1), false)),
		schemas.CodeTooManyUploads, "2 uploads in progress", "c1", "c2")
	if n := h.rdb.HLen(h.ctx, "t:room:{r1}:uploads").Val(); n != 2 {
		t.Errorf("%d uploads in the room, want 2", n)
	}
	if n := h.rdb.Exists(h.ctx, "t:upload:{u4}:progress").Val(); n != 0 {
		t.Error("a refused progress report wrote its progress hash")
	}
	// Uploads in progress go on, and restarting one is no new upload.
	if out := h.apply(h.env(alice, schemas.EventFileUploadProgress, "r1", progressed("r1", "u1", "f1", 5), false)); out.Status != "ok" {
		t.Errorf("progress of a running upload: %+v", out)
	}
	if out := h.apply(h.env(alice, schemas.EventFileUploadStarted, "r1", started("r1", "u2", "f2"), false)); out.Status != "ok" {
		t.Errorf("restart of a running upload: %+v", out)
	}
	// One ends: there is room for another.
	h.apply(h.env(alice, schemas.EventFileUploadCompleted, "r1", completed("r1", "u1", "f1"), false))
	h.drain("c1", "c2")
	if out := h.apply(h.env(bob, schemas.EventFileUploadStarted, "r1", started("r1", "u3", "f3"), false)); out.Status != "ok" {
		t.Errorf("start after one completed: %+v", out)
	}
	h.drain("c1", "c2")

	// Bob leaves with his upload unfinished; the room is full. The next
	// start drops bob's upload (it can never complete) and the room
	// hears it failed, before the new upload.
	h.apply(h.env(bob, schemas.EventLeaveRoom, "r1", nil, false))
	h.drain("c1", "c2")
	if h.rdb.Exists(h.ctx, "t:upload:{u3}:progress").Val() != 1 {
		t.Fatal("bob's upload has no progress hash")
	}
	out := h.apply(h.env(alice, schemas.EventFileUploadStarted, "r1", started("r1", "u5", "f5"), true))
	if out.Status != "ok" {
		t.Fatalf("start with a departed user's upload in the way: %+v", out)
	}
	gs := h.drain("c1", "c2")
	if diff := cmp.Diff([]string{"c1:ack->sA", "c1:file-upload-failed->sA", "c1:file-upload-started->sA"}, events(gs)); diff != "" {
		t.Errorf("deliveries (-want,+got):\n%s", diff)
	}
	failed := find(t, gs, schemas.EventFileUploadFailed).Body
	if failed["uploadId"] != "u3" || failed["userId"] != "bob" || failed["reason"] != ReasonUploaderLeft || failed["failedAt"] == nil {
		t.Errorf("file-upload-failed of the dropped upload: %v", failed)
	}
	if h.rdb.HExists(h.ctx, "t:room:{r1}:uploads", "u3").Val() || h.rdb.Exists(h.ctx, "t:upload:{u3}:progress").Val() != 0 {
		t.Error("the dropped upload is still kept")
	}
	if up := h.rdb.HGet(h.ctx, "t:room:{r1}", "activeUploads").Val(); strings.Contains(up, "u3") || !strings.Contains(up, "u5") {
		t.Errorf("activeUploads: %s", up)
	}
}

func TestFileLimit(t *testing.T) {
	h := limited(t, Limits{RoomMaxFiles: 1})
	h.apply(h.env(alice, schemas.EventJoinRoom, "r1", nil, false))
	h.apply(h.env(alice, schemas.EventFileUploadStarted, "r1", started("r1", "u1", "f1"), false))
	h.apply(h.env(alice, schemas.EventFileUploadStarted, "r1", started("r1", "u2", "f2"), false)) // room for it when it started
	h.apply(h.env(alice, schemas.EventFileUploadCompleted, "r1", completed("r1", "u1", "f1"), false))
	h.drain("c1")

	refused(t, h, h.apply(h.env(alice, schemas.EventFileUploadStarted, "r1", started("r1", "u3", "f3"), true)),
		schemas.CodeTooManyFiles, "room r1 holds 1 files", "c1")
	refused(t, h, h.apply(h.env(alice, schemas.EventFileUploadCompleted, "r1", completed("r1", "u2", "f2"), false)),
		schemas.CodeTooManyFiles, "holds 1 files", "c1")
	if n := h.rdb.HLen(h.ctx, "t:room:{r1}:files").Val(); n != 1 {
		t.Errorf("%d files, want 1", n)
	}
	// Replacing one's own file adds none.
	h.apply(h.env(alice, schemas.EventFileUploadStarted, "r1", started("r1", "u4", "f1"), false))
	if out := h.apply(h.env(alice, schemas.EventFileUploadCompleted, "r1", completed("r1", "u4", "f1"), false)); out.Status != "ok" {
		t.Errorf("replacing one's own file in a full room: %+v", out)
	}
}

// TestCompletionNeedsStartedUpload: file-added needs an upload of that
// file started by the same user in the room.
func TestCompletionNeedsStartedUpload(t *testing.T) {
	h := newHarness(t)
	h.apply(h.env(alice, schemas.EventJoinRoom, "r1", nil, false))
	h.apply(h.env(bob, schemas.EventJoinRoom, "r1", nil, false))
	h.drain("c1", "c2")

	refused(t, h, h.apply(h.env(alice, schemas.EventFileUploadCompleted, "r1", completed("r1", "u1", "f1"), true)),
		schemas.CodeUploadNotStarted, "you have no upload u1 of file f1 in room r1", "c1", "c2")
	h.apply(h.env(alice, schemas.EventFileUploadStarted, "r1", started("r1", "u1", "f1"), false))
	h.drain("c1", "c2")
	// Not for another file than the one started...
	refused(t, h, h.apply(h.env(alice, schemas.EventFileUploadCompleted, "r1", completed("r1", "u1", "f9"), false)),
		schemas.CodeUploadNotStarted, "no upload u1 of file f9", "c1", "c2")
	// ...nor by another user.
	refused(t, h, h.apply(h.env(bob, schemas.EventFileUploadCompleted, "r1", completed("r1", "u1", "f1"), false)),
		schemas.CodeForbidden, "belongs to user alice", "c1", "c2")
	if n := h.rdb.HLen(h.ctx, "t:room:{r1}:files").Val(); n != 0 {
		t.Errorf("refused completions added %d files", n)
	}
	if out := h.apply(h.env(alice, schemas.EventFileUploadCompleted, "r1", completed("r1", "u1", "f1"), false)); out.Status != "ok" {
		t.Errorf("completion of a started upload: %+v", out)
	}
	h.drain("c1", "c2")
	// Completed once: the upload is over.
	refused(t, h, h.apply(h.env(alice, schemas.EventFileUploadCompleted, "r1", completed("r1", "u1", "f1"), false)),
		schemas.CodeUploadNotStarted, "no upload u1", "c1", "c2")
}

// TestFileKeepsItsOwner: another user can neither replace a file nor
// complete an upload over it, even one started before the file existed.
func TestFileKeepsItsOwner(t *testing.T) {
	h := newHarness(t)
	h.apply(h.env(alice, schemas.EventJoinRoom, "r1", nil, false))
	h.apply(h.env(bob, schemas.EventJoinRoom, "r1", nil, false))
	h.apply(h.env(bob, schemas.EventFileUploadStarted, "r1", started("r1", "b1", "f1"), false)) // no f1 yet
	h.apply(h.env(alice, schemas.EventFileUploadStarted, "r1", started("r1", "a1", "f1"), false))
	h.apply(h.env(alice, schemas.EventFileUploadCompleted, "r1", completed("r1", "a1", "f1"), false))
	h.drain("c1", "c2")
	file := h.rdb.HGet(h.ctx, "t:room:{r1}:files", "f1").Val()

	refused(t, h, h.apply(h.env(bob, schemas.EventFileUploadCompleted, "r1", completed("r1", "b1", "f1"), true)),
		schemas.CodeNotOwner, "file f1 belongs to user alice", "c1", "c2")
	refused(t, h, h.apply(h.env(bob, schemas.EventFileUploadStarted, "r1", started("r1", "b2", "f1"), false)),
		schemas.CodeNotOwner, "file f1 belongs to user alice", "c1", "c2")
	if got := h.rdb.HGet(h.ctx, "t:room:{r1}:files", "f1").Val(); got != file {
		t.Errorf("alice's file changed: %s", got)
	}
	// Alice replaces her own file.
	h.apply(h.env(alice, schemas.EventFileUploadStarted, "r1", started("r1", "a2", "f1"), false))
	if out := h.apply(h.env(alice, schemas.EventFileUploadCompleted, "r1", completed("r1", "a2", "f1"), false)); out.Status != "ok" {
		t.Errorf("owner replacing her file: %+v", out)
	}
}

// TestProgressDoesNotReadTheRoom: with the limits in place a progress
// report, the frequent event, still reads nothing that grows with the
// room (no HGETALL, HVALS, SMEMBERS), nor does a first report that counts
// the room's uploads (HLEN).
func TestProgressDoesNotReadTheRoom(t *testing.T) {
	h := newHarness(t)
	h.apply(h.env(alice, schemas.EventJoinRoom, "r1", nil, false))
	for i := range 30 {
		w := who{fmt.Sprint("u", i), "U", fmt.Sprint("s", i), "c2"}
		h.apply(h.env(w, schemas.EventJoinRoom, "r1", nil, false))
		h.apply(h.env(w, schemas.EventFileUploadStarted, "r1", started("r1", fmt.Sprint("up", i), fmt.Sprint("f", i)), false))
	}
	h.drain("c1", "c2")
	resetStats(t, h)
	for n := int64(1); n <= 5; n++ {
		if out := h.apply(h.env(alice, schemas.EventFileUploadProgress, "r1", progressed("r1", "mine", "fm", n), false)); out.Status != "ok" {
			t.Fatalf("progress: %+v", out)
		}
	}
	if used := roomReads(t, h); len(used) != 0 {
		t.Errorf("progress read the whole room: %v", used)
	}
}

func resetStats(t *testing.T, h *harness) {
	t.Helper()
	if err := h.rdb.ConfigResetStat(h.ctx).Err(); err != nil {
		t.Fatal(err)
	}
}

// roomReads lists the commands that read a whole hash or set run since the
// last resetStats (INFO commandstats counts the scripts' commands too).
func roomReads(t *testing.T, h *harness) []string {
	t.Helper()
	info, err := h.rdb.Info(h.ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(info, "cmdstat_hget:") && !strings.Contains(info, "cmdstat_hmget:") {
		t.Fatalf("commandstats does not count the scripts' commands:\n%s", info)
	}
	var used []string
	for _, c := range []string{"hgetall", "hvals", "smembers", "hscan", "sscan"} {
		if strings.Contains(info, "cmdstat_"+c+":") {
			used = append(used, c)
		}
	}
	return used
}

// remarshal decodes v, a decoded JSON value, into out.
func remarshal(v any, out any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

func TestLimitsValidate(t *testing.T) {
	ok := Config{}.Limits
	if err := ok.Validate(); err != nil {
		t.Errorf("zero limits (the defaults): %v", err)
	}
	if got := ok.orDefaults(); got != DefaultLimits() {
		t.Errorf("zero limits mean %+v, want the defaults", got)
	}
	for _, l := range []Limits{{RoomMaxMembers: -1}, {RoomMaxUploads: -5}, {RoomMaxFiles: maxLimit + 1}, {SnapshotLimit: -1}} {
		err := l.Validate()
		if err == nil || !strings.Contains(err.Error(), "ROOMSTREAM_") {
			t.Errorf("%+v: %v, want an error naming the variable", l, err)
		}
	}
}

// TestRefusedJoinMarkerComesFirst: a refused join tells its connector
// ($refused) in the same outbound entry as the refusal and before it, so
// the connector stops counting the room before the client can act on the
// refusal.
func TestRefusedJoinMarkerComesFirst(t *testing.T) {
	h := limited(t, Limits{RoomMaxMembers: 1})
	h.apply(h.env(bob, schemas.EventJoinRoom, "r1", nil, false))
	h.drain("c1", "c2")
	h.apply(h.env(alice, schemas.EventJoinRoom, "r1", nil, true))
	msgs, err := h.rdb.XRevRangeN(h.ctx, h.c.Keys.Outbound("c1"), "+", "-", 1).Result()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("outbound of c1: %v %v", msgs, err)
	}
	o, err := streams.DecodeOutbound(msgs[0].ID, msgs[0].Values)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, m := range o.Messages {
		kinds = append(kinds, m.Event+"/"+m.Room+"/"+strings.Join(m.To, ","))
	}
	if diff := cmp.Diff([]string{"$refused/r1/sA", "/" + "/sA"}, kinds); diff != "" {
		t.Errorf("the refused join's entry (-want,+got):\n%s", diff)
	}
}
