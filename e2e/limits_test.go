package e2e

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/roomstream/roomstream/e2e/testkit"
	"github.com/roomstream/roomstream/schemas"
)

// TestRoomLimitsReachTheClient: with room limits configured on the
// worker, a real client hears each refusal's code (in its ack, or as an
// `error` event when it asked for none), a repeated join is answered
// without a snapshot, and a spoofing file name is refused by the
// connector (issue 12, items 3 and 9).
func TestRoomLimitsReachTheClient(t *testing.T) {
	d := deploy(t, 1, 1, false, "ROOMSTREAM_ROOM_MAX_MEMBERS", "2", "ROOMSTREAM_ROOM_MAX_UPLOADS", "1",
		"ROOMSTREAM_ROOM_MAX_FILES", "1", "ROOMSTREAM_SNAPSHOT_LIMIT", "1")
	url := d.connectors[0].URL()
	a := users.Dial(t, url, "alice", "Alice")
	b := users.Dial(t, url, "bob", "Bob")
	c := users.Dial(t, url, "carol", "Carol")
	testkit.MustAck(t, a, schemas.EventJoinRoom, map[string]string{"roomId": "lim"})
	snap := testkit.MustAck(t, b, schemas.EventJoinRoom, map[string]string{"roomId": "lim"})
	if r := snap.Room; r == nil || len(r.Members) != 1 || r.MemberCount != 2 || !r.Truncated {
		t.Errorf("bob's capped snapshot: %+v", r)
	}

	expect := func(raw json.RawMessage, err error, code schemas.Code) {
		t.Helper()
		var ack schemas.Ack
		if err != nil || json.Unmarshal(raw, &ack) != nil || ack.OK || ack.Error == nil || ack.Error.Code != code || ack.Error.Message == "" {
			t.Errorf("ack %s (%v), want %s", raw, err, code)
		}
	}
	ctx := testkit.Within(t, 20*time.Second)
	// A third user: the room is full, in the ack and as an error event.
	raw, err := c.EmitAck(ctx, schemas.EventJoinRoom, map[string]string{"roomId": "lim"})
	expect(raw, err, schemas.CodeRoomFull)
	if err := c.Emit(ctx, schemas.EventJoinRoom, map[string]string{"roomId": "lim"}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, c, schemas.EventError, `"code":"room_full"`, `"event":"join-room"`, `"roomId":"lim"`)

	// A repeated join: a small ack, no snapshot.
	raw, err = a.EmitAck(ctx, schemas.EventJoinRoom, map[string]string{"roomId": "lim"})
	var again schemas.Ack
	if err != nil || json.Unmarshal(raw, &again) != nil || !again.OK || !again.AlreadyJoined || again.Room != nil {
		t.Errorf("repeated join answered %s (%v)", raw, err)
	}

	// A completion without a started upload adds nothing.
	file := func(id string) map[string]any {
		return map[string]any{"fileId": id, "fileName": id + ".txt", "roomId": "lim", "size": 3}
	}
	raw, err = a.EmitAck(ctx, schemas.EventFileUploadCompleted, file("f0"))
	expect(raw, err, schemas.CodeUploadNotStarted)
	// One upload at a time; then one file at most; and it stays alice's.
	testkit.MustAck(t, a, schemas.EventFileUploadStarted, file("f1"))
	raw, err = b.EmitAck(ctx, schemas.EventFileUploadStarted, file("f2"))
	expect(raw, err, schemas.CodeTooManyUploads)
	testkit.MustAck(t, a, schemas.EventFileUploadCompleted, file("f1"))
	testkit.WaitFor(t, b, schemas.EventFileAdded, `"id":"f1"`)
	raw, err = b.EmitAck(ctx, schemas.EventFileUploadStarted, file("f2"))
	expect(raw, err, schemas.CodeTooManyFiles)
	raw, err = b.EmitAck(ctx, schemas.EventFileUploadStarted, file("f1"))
	expect(raw, err, schemas.CodeNotOwner)

	// A file name that reads backwards in a UI never reaches a worker.
	spoof := file("f3")
	spoof["fileName"] = "invoice\u202etxt.exe"
	raw, err = a.EmitAck(ctx, schemas.EventFileUploadStarted, spoof)
	expect(raw, err, schemas.CodeInvalidPayload)
}
