package audit

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/roomstream/roomstream/infra/testredis"
	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// TestTimelineShowsServerAPICommands: commands of the server API are in
// the log with their origin, replay to the same outcomes, and leave state
// that verify finds equal to the live one.
func TestTimelineShowsServerAPICommands(t *testing.T) {
	rdb := testredis.Start(t, nil).Client()
	lw := startLiveWorker(t, rdb, "live:", 4)
	api := func(typ, user, event string, data any) string {
		env := &streams.Envelope{Type: typ, RoomID: "design", UserID: user, Event: event, Via: schemas.ViaAPI, At: time.Now()}
		if data != nil {
			env.Data, _ = json.Marshal(data)
		}
		if typ == schemas.CmdRemoveMember {
			env.Reason = schemas.ReasonRemoved
		}
		return lw.append(env)
	}
	lw.send(alice, schemas.EventJoinRoom, "design", schemas.JoinRoomPayload{RoomID: "design"})
	lw.send(bob, schemas.EventJoinRoom, "design", schemas.JoinRoomPayload{RoomID: "design"})
	api(schemas.CmdPublish, "", "app:note", map[string]string{"text": "hi"})
	lw.send(bob, schemas.EventLockRoom, "design", schemas.LockRoomPayload{RoomID: "design"})
	api(schemas.CmdOperatorUnlock, "", "", nil)
	api(schemas.CmdPublish, "", schemas.EventFileAdded, schemas.FileAddedPayload{RoomID: "design",
		File: schemas.File{ID: "f9", Name: "report.pdf", Size: 2048, MimeType: "application/pdf", CreatedAt: "2026-01-02T03:04:05.000Z"}})
	api(schemas.CmdRemoveMember, "bob", "", nil)
	api(schemas.CmdOperatorUnlock, "", "", nil)
	lw.settle()

	r := New(rdb, lw.cfg, &Options{EmptyRoomTTL: time.Hour})
	evs := timeline(t, r, TimelineOptions{Room: "design"})
	want := []string{
		"join-room Alice (alice) applied",
		"join-room Bob (bob) applied",
		"server-event (api) applied",
		"lock-room Bob (bob) applied",
		"operator-unlock (api) applied",
		"server-event (api) applied",
		"member-remove (api) applied",
		"operator-unlock (api) refused: not_locked",
	}
	if diff := cmp.Diff(want, brief(evs)); diff != "" {
		t.Fatalf("timeline (-want,+got):\n%s", diff)
	}
	var origins []string
	for _, e := range evs {
		origins = append(origins, e.Origin)
	}
	if diff := cmp.Diff([]string{"socket", "socket", "api", "socket", "api", "api", "api", "api"}, origins); diff != "" {
		t.Errorf("origins (-want,+got):\n%s", diff)
	}
	if e := evs[5]; e.Detail != `event "file-added", file "report.pdf" (2.0 KiB) as f9` || !cmp.Equal(e.Emitted, []string{"file-added"}) {
		t.Errorf("file-added from the API: %+v", e)
	}
	if e := evs[6]; e.Detail != `removes user bob, reason "removed"` || !cmp.Equal(e.Emitted, []string{"user-left"}) {
		t.Errorf("member removal: %+v", e)
	}
	if sum, reps := verifyAll(t, r, VerifyOptions{}); len(reps) != 0 || sum.Matching != 1 {
		t.Errorf("verify after API commands: %+v %+v", sum, reps)
	}
}
