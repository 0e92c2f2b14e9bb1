package containers_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/roomstream/roomstream/e2e/containers"
	"github.com/roomstream/roomstream/e2e/sioclient"
	"github.com/roomstream/roomstream/e2e/testkit"
	"github.com/roomstream/roomstream/schemas"
)

// TestDesignFlow runs the design's whole flow across 2 connectors and 2
// workers: Alice on connector 1 with the zishang520 Go client
// (authenticating with the `authenticate` event), Bob on connector 2 with
// the design document's JavaScript client code in Node (token in the
// handshake), Carol joining late with roomstream's own Go client.
func TestDesignFlow(t *testing.T) {
	need(t)
	began := time.Now()
	c := containers.Start(t, nil)
	c1, c2 := c.AddConnector(), c.AddConnector()
	c.AddWorker()
	c.AddWorker()
	c.WaitPartitionsOwned()
	ctx := testkit.Within(t, 2*time.Minute)
	const room = "design-room"
	sent := 0

	// Authenticate.
	alice := dialZ(t, c1.URL(), nil)
	a, err := alice.ack(ctx, schemas.EventAuthenticate, map[string]string{"token": c.Token("alice", "Alice")})
	sent++
	if err != nil || !a.OK || a.Auth == nil || a.Auth.UserID != "alice" || a.Auth.SessionID == "" {
		t.Fatalf("alice authenticate: %+v %v", a, err)
	}
	if _, err := alice.wait(ctx, schemas.EventAuthSuccessful, nil); err != nil {
		t.Fatal(err)
	}
	bob := containers.StartJS(t, c2.URL(), "bob", "Bob", c.Token("bob", "Bob"))
	if _, err := bob.WaitFor(ctx, "connect", func(l containers.JSLine) bool { return l.Kind == "connect" }); err != nil {
		t.Fatal(err)
	}
	authOK, err := bob.WaitFor(ctx, "authentication_successful", isEvent(schemas.EventAuthSuccessful))
	if err != nil {
		t.Fatal(err)
	}
	var bobAuth schemas.AuthSuccessPayload
	if json.Unmarshal(authOK.Args[0], &bobAuth); bobAuth.UserID != "bob" || bobAuth.SessionID == "" {
		t.Fatalf("bob authentication_successful %s", authOK.Args[0])
	}

	// Join: Alice with an ack (snapshot), Bob with the design's joinRoom.
	a, err = alice.ack(ctx, schemas.EventJoinRoom, map[string]string{"roomId": room, "userId": "alice"})
	sent++
	if err != nil || !a.OK || a.Room == nil || len(a.Room.Members) != 1 || a.Room.Members[0].UserName != "Alice" {
		t.Fatalf("alice join: %+v %v", a, err)
	}
	bob.Join(room)
	sent++
	st, err := bob.WaitFor(ctx, "room-state", isEvent(schemas.EventRoomState))
	if err != nil {
		t.Fatal(err)
	}
	var snap schemas.RoomSnapshot
	if json.Unmarshal(st.Args[0], &snap); len(snap.Members) != 2 || snap.RoomID != room {
		t.Fatalf("bob's room-state %s", st.Args[0])
	}
	joined, err := alice.wait(ctx, schemas.EventUserJoined, func(ev sioclient.Event) bool { return hasField(ev, "userId", "bob") })
	if err != nil {
		t.Fatal(err)
	}
	var uj schemas.UserJoinedPayload
	if joined.Decode(&uj); uj.RoomID != room || uj.UserName != "Bob" || !isISO(uj.JoinedAt) || joined.Offset == "" {
		t.Errorf("alice's user-joined %+v offset %q", uj, joined.Offset)
	}

	// Lock: Bob's design handler updateRoomLockState sees it.
	a, err = alice.ack(ctx, schemas.EventLockRoom, map[string]string{"roomId": room, "userId": "alice", "reason": "uploading the report"})
	sent++
	if err != nil || !a.OK {
		t.Fatalf("alice lock: %+v %v", a, err)
	}
	ui, err := bob.WaitFor(ctx, "updateRoomLockState", isUI("updateRoomLockState"))
	if err != nil {
		t.Fatal(err)
	}
	var locked schemas.RoomLockedPayload
	if json.Unmarshal(ui.Data, &locked); locked.RoomID != room || locked.LockedBy != "alice" || locked.LockedByName != "Alice" ||
		locked.Reason != "uploading the report" || !isISO(locked.LockedAt) {
		t.Errorf("bob's room-locked %s", ui.Data)
	}
	// Bob may not upload into Alice's locked room: a clear refusal.
	raw, err := bob.Emit(ctx, schemas.EventFileUploadStarted, map[string]any{"fileId": "f-bob", "fileName": "x.txt", "roomId": room, "userId": "bob", "size": 10})
	sent++
	var refused schemas.Ack
	if err != nil || json.Unmarshal(raw, &refused) != nil || refused.OK || refused.Error == nil || refused.Error.Code != schemas.CodeRoomLocked {
		t.Fatalf("bob's upload into a locked room: %s %v", raw, err)
	}

	// Upload: started, progress (seq 1..10), completed -> file-added.
	a, err = alice.ack(ctx, schemas.EventFileUploadStarted, map[string]any{"fileId": "f1", "fileName": "report.pdf", "roomId": room,
		"userId": "alice", "size": 1000, "mimeType": "application/pdf"})
	sent++
	if err != nil || !a.OK || a.UploadID != "f1" {
		t.Fatalf("alice upload start: %+v %v", a, err)
	}
	const aliceSteps = 10
	for i := 1; i <= aliceSteps; i++ {
		a, err = alice.ack(ctx, schemas.EventFileUploadProgress, map[string]any{"fileId": "f1", "uploadId": "f1", "fileName": "report.pdf",
			"roomId": room, "userId": "alice", "bytesUploaded": i * 100, "totalBytes": 1000, "percentage": float64(i * 10), "seq": i,
			"uploadSpeed": 2048.5, "estimatedTimeRemaining": float64(aliceSteps - i)})
		sent++
		if err != nil || !a.OK {
			t.Fatalf("alice progress %d: %+v %v", i, a, err)
		}
	}
	a, err = alice.ack(ctx, schemas.EventFileUploadCompleted, map[string]any{"fileId": "f1", "fileName": "report.pdf", "roomId": room,
		"userId": "alice", "size": 1000, "mimeType": "application/pdf"})
	sent++
	if err != nil || !a.OK {
		t.Fatalf("alice upload complete: %+v %v", a, err)
	}
	added, err := bob.WaitFor(ctx, "file-added f1", func(l containers.JSLine) bool {
		return l.Kind == "event" && l.Name == schemas.EventFileAdded
	})
	if err != nil {
		t.Fatal(err)
	}
	var fa schemas.FileAddedPayload
	if json.Unmarshal(added.Args[0], &fa); fa.RoomID != room || fa.File.ID != "f1" || fa.File.Name != "report.pdf" || fa.File.Size != 1000 ||
		fa.File.MimeType != "application/pdf" || fa.File.UploadedBy != "alice" || fa.File.UploadedByName != "Alice" || fa.File.IsFolder || !isISO(fa.File.CreatedAt) {
		t.Errorf("bob's file-added %s", added.Args[0])
	}
	// Bob's started relay came before every progress, and the design's
	// handler showed Alice's ten steps in order.
	var order []string
	var shown []int64
	for _, l := range bob.Lines() {
		if l.Kind == "event" && (l.Name == schemas.EventFileUploadStarted || l.Name == schemas.EventFileUploadProgress || l.Name == schemas.EventFileAdded) {
			order = append(order, l.Name)
		}
		if l.Kind == "ui" && l.Fn == "updateFileProgressUI" {
			var p schemas.FileUploadProgressPayload
			_ = json.Unmarshal(l.Data, &p)
			if p.UserName != "Alice" || p.Seq == nil || *p.Seq != int64(len(shown)+1) || p.UploadSpeed == nil {
				t.Errorf("bob's progress UI got %s", l.Data)
			}
			shown = append(shown, p.BytesUploaded)
		}
	}
	if len(order) != aliceSteps+2 || order[0] != schemas.EventFileUploadStarted || order[len(order)-1] != schemas.EventFileAdded {
		t.Errorf("bob saw upload events %v", order)
	}
	if fmt.Sprint(shown) != "[100 200 300 400 500 600 700 800 900 1000]" {
		t.Errorf("bob's updateFileProgressUI showed %v", shown)
	}

	// Unlock; Bob uploads with the design's reportUploadProgress.
	a, err = alice.ack(ctx, schemas.EventUnlockRoom, map[string]string{"roomId": room, "userId": "alice"})
	sent++
	if err != nil || !a.OK {
		t.Fatalf("alice unlock: %+v %v", a, err)
	}
	if _, err := bob.WaitFor(ctx, "room-unlocked", isEvent(schemas.EventRoomUnlocked)); err != nil {
		t.Fatal(err)
	}
	raw, err = bob.Emit(ctx, schemas.EventFileUploadStarted, map[string]any{"fileId": "f2", "uploadId": "u2", "fileName": "notes.txt",
		"roomId": room, "userId": "bob", "size": 500, "mimeType": "text/plain"})
	sent++
	var started schemas.Ack
	if err != nil || json.Unmarshal(raw, &started) != nil || !started.OK {
		t.Fatalf("bob upload start: %s %v", raw, err)
	}
	bob.SetFile("notes.txt")
	const bobSteps = 5
	for i := 1; i <= bobSteps; i++ {
		bob.Progress("f2", "u2", int64(i*100), 500)
		sent++
	}
	for i := 1; i <= bobSteps; i++ {
		ev, err := alice.wait(ctx, schemas.EventFileUploadProgress, func(ev sioclient.Event) bool {
			return hasField(ev, "userId", "bob") && hasNum(ev, "bytesUploaded", i*100)
		})
		if err != nil {
			t.Fatal(err)
		}
		var p schemas.FileUploadProgressPayload
		if ev.Decode(&p); p.FileName != "notes.txt" || p.UserName != "Bob" || p.Percentage != float64(i*20) || p.TotalBytes != 500 {
			t.Errorf("alice got bob's progress %s", ev.Args[0])
		}
	}
	raw, err = bob.Emit(ctx, schemas.EventFileUploadCompleted, map[string]any{"fileId": "f2", "uploadId": "u2", "fileName": "notes.txt",
		"roomId": room, "userId": "bob", "size": 500, "mimeType": "text/plain"})
	sent++
	if err != nil || json.Unmarshal(raw, &started) != nil || !started.OK {
		t.Fatalf("bob upload complete: %s %v", raw, err)
	}
	fev, err := alice.wait(ctx, schemas.EventFileAdded, func(ev sioclient.Event) bool { return hasField(ev, "roomId", room) && fileID(ev) == "f2" })
	if err != nil {
		t.Fatal(err)
	}
	if fev.Decode(&fa); fa.File.UploadedByName != "Bob" || fa.File.MimeType != "text/plain" {
		t.Errorf("alice's file-added %s", fev.Args[0])
	}

	// Carol joins late and sees the room as it is.
	carol, err := sioclient.Dial(ctx, c2.URL(), &sioclient.Options{Token: c.Token("carol", "Carol")})
	if err != nil {
		t.Fatal(err)
	}
	defer carol.Close()
	raw, err = carol.EmitAck(ctx, schemas.EventJoinRoom, map[string]string{"roomId": room})
	sent++
	var cj schemas.Ack
	if err != nil || json.Unmarshal(raw, &cj) != nil || !cj.OK || cj.Room == nil {
		t.Fatalf("carol join: %s %v", raw, err)
	}
	if r := cj.Room; len(r.Members) != 3 || r.IsLocked || len(r.ActiveUploads) != 0 || len(r.Files) != 2 {
		t.Errorf("carol's snapshot %+v", r)
	}

	// Every progress event reached both members exactly once, in order.
	if err := c.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	truth, err := c.ReadTruth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	aliceSID := alice.s.Id()
	tally := truth.Check([]testkit.Receiver{
		{Label: "alice (zishang520)", SID: aliceSID, Room: room, Got: testkit.ProgressOf(alice.all(), room)},
		{Label: "bob (design JS)", SID: bob.SocketID(), Room: room, Got: containers.JSProgressOf(bob.Lines(), room)},
	})
	if tally.Expected != 2*(aliceSteps+bobSteps) || !tally.OK() || truth.Dead != 0 {
		t.Errorf("%s (dead letters %d)\n%v", tally, truth.Dead, tally.Problems)
	}
	t.Logf("RESULT design-flow: clients=3 (zishang520, design JS, sioclient) connectors=2 workers=2 events sent=%d progress sent=%d; %s; dead=%d; wall=%s",
		sent, aliceSteps+bobSteps, tally, truth.Dead, time.Since(began).Round(time.Millisecond))
}

func isEvent(name string) func(containers.JSLine) bool {
	return func(l containers.JSLine) bool { return l.Kind == "event" && l.Name == name && len(l.Args) > 0 }
}

func isUI(fn string) func(containers.JSLine) bool {
	return func(l containers.JSLine) bool { return l.Kind == "ui" && l.Fn == fn }
}

func hasField(ev sioclient.Event, k, v string) bool {
	var m map[string]any
	if ev.Decode(&m) != nil {
		return false
	}
	s, _ := m[k].(string)
	return s == v
}

func hasNum(ev sioclient.Event, k string, v int) bool {
	var m map[string]any
	if ev.Decode(&m) != nil {
		return false
	}
	n, _ := m[k].(float64)
	return n == float64(v)
}

func fileID(ev sioclient.Event) string {
	var fa schemas.FileAddedPayload
	_ = ev.Decode(&fa)
	return fa.File.ID
}

func isISO(s string) bool {
	_, err := time.Parse("2006-01-02T15:04:05.000Z", s)
	return err == nil
}
