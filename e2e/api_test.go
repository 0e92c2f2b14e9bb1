package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/roomstream/roomstream/connector/api"
	"github.com/roomstream/roomstream/e2e/sioclient"
	"github.com/roomstream/roomstream/e2e/testkit"
	"github.com/roomstream/roomstream/schemas"
)

const apiKey = "e2e-api-key-0123456789abcdef"

// call sends an API request with key to a connector.
func call(t *testing.T, base, key, method, path string, body any, hdr ...string) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, base+path, r)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// collect returns the events named in names that c receives until stop
// arrives, then for settle more (to catch duplicates).
func collect(t *testing.T, c *sioclient.Client, stop string, settle time.Duration, names ...string) []sioclient.Event {
	t.Helper()
	want := map[string]bool{stop: true}
	for _, n := range names {
		want[n] = true
	}
	var out []sioclient.Event
	deadline := time.After(15 * time.Second)
	var quiet <-chan time.Time
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatalf("connection closed while collecting (%s)", c.Reason())
			}
			if want[ev.Name] {
				out = append(out, ev)
			}
			if ev.Name == stop && quiet == nil {
				quiet = time.After(settle)
			}
		case <-quiet:
			return out
		case <-deadline:
			t.Fatalf("no %s within 15s; got %d events", stop, len(out))
		}
	}
}

// label names an event of the publish sequence: "progress 2", "app:step 3",
// "file-added f1".
func label(ev sioclient.Event) string {
	var v struct {
		Seq  *int `json:"seq"`
		I    *int `json:"i"`
		File struct {
			ID string `json:"id"`
		} `json:"file"`
	}
	_ = ev.Decode(&v)
	switch {
	case v.Seq != nil:
		return fmt.Sprintf("%s %d", ev.Name, *v.Seq)
	case v.I != nil:
		return fmt.Sprintf("%s %d", ev.Name, *v.I)
	case v.File.ID != "":
		return ev.Name + " " + v.File.ID
	}
	return ev.Name
}

// TestServerAPI runs the server API on two connectors and two workers: a
// backend's events reach members on both connectors once and in order
// with client events; a retried publish is delivered once; operators
// unlock, remove and disconnect across connectors; revoked tokens can
// neither reconnect nor recover; a wrong or missing key gets 401.
func TestServerAPI(t *testing.T) {
	d := deploy(t, 2, 2, false, "ROOMSTREAM_API_KEY", apiKey, "ROOMSTREAM_LOCK_GRACE", "1h")
	api1, api2 := d.connectors[0].URL(), d.connectors[1].URL()

	for _, base := range []string{api1, api2} {
		for _, key := range []string{"", "wrong-key-0123456789"} {
			for _, path := range []string{"/api/v1/rooms", "/api/v1/openapi.json", "/api/v1/users/alice/disconnect"} {
				status, body := call(t, base, key, "POST", path, map[string]any{"revokeTokens": true})
				if status != http.StatusUnauthorized || len(body) != 0 {
					t.Errorf("%s%s with key %q: %d %q, want 401 and no body", base, path, key, status, body)
				}
			}
		}
	}

	alice := users.Dial(t, api1, "alice", "Alice")
	bob := users.Dial(t, api2, "bob", "Bob")
	testkit.MustAck(t, alice, schemas.EventJoinRoom, map[string]string{"roomId": "design"})
	testkit.MustAck(t, bob, schemas.EventJoinRoom, map[string]string{"roomId": "design"})
	testkit.WaitFor(t, alice, schemas.EventUserJoined, `"userId":"bob"`)

	if status, body := call(t, api1, apiKey, "POST", "/api/v1/rooms/nowhere/events", map[string]any{"event": "app:x"}); status != 404 {
		t.Errorf("publish to an unknown room: %d %s", status, body)
	}

	// Client events and backend events, interleaved, each accepted before
	// the next is sent, through both connectors' APIs.
	testkit.MustAck(t, alice, schemas.EventFileUploadStarted, map[string]any{"fileId": "f1", "fileName": "plan.pdf", "roomId": "design", "size": 100})
	var want []string
	for i := 0; i < 10; i++ {
		if i%2 == 0 {
			testkit.MustAck(t, alice, schemas.EventFileUploadProgress, map[string]any{"fileId": "f1", "uploadId": "f1", "fileName": "plan.pdf",
				"roomId": "design", "bytesUploaded": i * 10, "totalBytes": 100, "percentage": i * 10, "seq": i})
			want = append(want, fmt.Sprintf("file-upload-progress %d", i))
			continue
		}
		base := []string{api1, api2}[i%4/2]
		status, body := call(t, base, apiKey, "POST", "/api/v1/rooms/design/events", map[string]any{"event": "app:step", "data": map[string]int{"i": i}})
		if status != http.StatusAccepted || !strings.Contains(string(body), `"entryId"`) {
			t.Fatalf("publish app:step %d: %d %s", i, status, body)
		}
		want = append(want, fmt.Sprintf("app:step %d", i))
	}
	// The backend stored the file: it says so, for everyone.
	status, body := call(t, api2, apiKey, "POST", "/api/v1/rooms/design/events", map[string]any{"event": "file-added",
		"data": map[string]any{"file": map[string]any{"id": "f1", "name": "plan.pdf", "size": 100, "mimeType": "application/pdf", "uploadedBy": "alice", "uploadedByName": "Alice"}}})
	if status != http.StatusAccepted {
		t.Fatalf("publish file-added: %d %s", status, body)
	}
	want = append(want, "file-added f1")
	for _, c := range []*sioclient.Client{alice, bob} {
		var got []string
		for _, ev := range collect(t, c, schemas.EventFileAdded, 300*time.Millisecond, schemas.EventFileUploadProgress, "app:step") {
			got = append(got, label(ev))
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s received:\n  %s\nwant once and in order:\n  %s", c.SID, strings.Join(got, "|"), strings.Join(want, "|"))
		}
	}
	var room schemas.RoomSnapshot
	status, body = call(t, api1, apiKey, "GET", "/api/v1/rooms/design", nil)
	if err := json.Unmarshal(body, &room); status != 200 || err != nil || len(room.Files) != 1 || len(room.ActiveUploads) != 0 || len(room.Members) != 2 {
		t.Errorf("room after file-added: %d %s", status, body)
	}

	// A publish retried with the same Idempotency-Key (the second time
	// through the other connector) is delivered once.
	var first, again api.Accepted
	status, body = call(t, api1, apiKey, "POST", "/api/v1/rooms/design/events", map[string]any{"event": "app:paid", "data": map[string]int{"i": 42}}, "Idempotency-Key", "order-42")
	_ = json.Unmarshal(body, &first)
	status2, body2 := call(t, api2, apiKey, "POST", "/api/v1/rooms/design/events", map[string]any{"event": "app:paid", "data": map[string]int{"i": 42}}, "Idempotency-Key", "order-42")
	_ = json.Unmarshal(body2, &again)
	if status != 202 || status2 != 202 || again.EntryID != first.EntryID || !again.Repeated {
		t.Errorf("retried publish: %d %s then %d %s", status, body, status2, body2)
	}
	call(t, api1, apiKey, "POST", "/api/v1/rooms/design/events", map[string]any{"event": "app:after"})
	for _, c := range []*sioclient.Client{alice, bob} {
		var got []string
		for _, ev := range collect(t, c, "app:after", 300*time.Millisecond, "app:paid") {
			got = append(got, label(ev))
		}
		if strings.Join(got, "|") != "app:paid 42|app:after" {
			t.Errorf("%s received %v, want app:paid once, then app:after", c.SID, got)
		}
	}

	// Operator overrides: bob's lock released, then bob removed.
	testkit.MustAck(t, bob, schemas.EventLockRoom, map[string]string{"roomId": "design"})
	testkit.WaitFor(t, alice, schemas.EventRoomLocked, `"lockedBy":"bob"`)
	if status, body := call(t, api1, apiKey, "POST", "/api/v1/rooms/design/unlock", nil); status != 202 {
		t.Fatalf("unlock: %d %s", status, body)
	}
	testkit.WaitFor(t, alice, schemas.EventRoomUnlocked, `"reason":"operator"`)
	testkit.WaitFor(t, bob, schemas.EventRoomUnlocked, `"reason":"operator"`)
	if status, body := call(t, api1, apiKey, "POST", "/api/v1/rooms/design/unlock", nil); status != 409 {
		t.Errorf("unlock of an unlocked room: %d %s", status, body)
	}
	if status, body := call(t, api2, apiKey, "DELETE", "/api/v1/rooms/design/members/bob", nil); status != 202 {
		t.Fatalf("remove bob: %d %s", status, body)
	}
	testkit.WaitFor(t, alice, schemas.EventUserLeft, `"userId":"bob"`, `"reason":"removed"`)
	testkit.WaitFor(t, bob, schemas.EventUserLeft, `"userId":"bob"`, `"reason":"removed"`)
	status, body = call(t, api1, apiKey, "GET", "/api/v1/rooms/design", nil)
	if err := json.Unmarshal(body, &room); status != 200 || err != nil || len(room.Members) != 1 || room.Members[0].UserID != "alice" {
		t.Errorf("room after bob's removal: %d %s", status, body)
	}

	// Carol on both connectors, plus a third socket whose network dropped
	// (held for recovery on connector 1).
	carolTok := users.Token(t, "carol", "Carol")
	carols := make([]*sioclient.Client, 3)
	for i, base := range []string{api1, api2, api1} {
		c, err := sioclient.Dial(context.Background(), base, &sioclient.Options{Token: carolTok})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Drop)
		testkit.MustAck(t, c, schemas.EventJoinRoom, map[string]string{"roomId": "design"})
		carols[i] = c
	}
	testkit.WaitFor(t, alice, schemas.EventUserJoined, `"userId":"carol"`)
	held := carols[2]
	heldPID, heldOffset := held.PID, held.Offset()
	held.Drop()
	var user api.UserInfo
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, body = call(t, api2, apiKey, "GET", "/api/v1/users/carol", nil)
		user = api.UserInfo{}
		_ = json.Unmarshal(body, &user)
		states := map[string]int{}
		for _, s := range user.Sockets {
			states[s.State+"@"+s.Connector]++
		}
		if states["live@conn1"] == 1 && states["live@conn2"] == 1 && states["held@conn1"] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("carol's sockets: %d %s", status, body)
		}
		time.Sleep(50 * time.Millisecond)
	}

	start := time.Now()
	status, body = call(t, api2, apiKey, "POST", "/api/v1/users/carol/disconnect", map[string]any{"reason": "account suspended", "revokeTokens": true})
	if status != 202 {
		t.Fatalf("disconnect: %d %s", status, body)
	}
	for i, c := range carols[:2] {
		select {
		case <-c.Done():
			if c.Reason() != "io server disconnect" {
				t.Errorf("carol's socket %d ended with %q, want io server disconnect", i, c.Reason())
			}
		case <-time.After(time.Second):
			t.Fatalf("carol's socket on connector %d still open 1s after the disconnect", i+1)
		}
	}
	t.Logf("disconnect: both of carol's live sockets closed %s after the request", time.Since(start).Round(time.Millisecond))
	left := testkit.WaitFor(t, alice, schemas.EventUserLeft, `"userId":"carol"`)
	if !strings.Contains(string(left.Args[0]), `"reason":"server_disconnect"`) {
		t.Errorf("user-left for carol: %s", left.Args[0])
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		status, body = call(t, api1, apiKey, "GET", "/api/v1/users/carol", nil)
		user = api.UserInfo{}
		_ = json.Unmarshal(body, &user)
		if len(user.Sockets) == 0 && len(user.Rooms) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("carol after the disconnect: %d %s", status, body)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The revoked token: no new connection, no recovery (with or
	// without the token), no authenticate.
	for _, base := range []string{api1, api2} {
		_, err := sioclient.Dial(context.Background(), base, &sioclient.Options{Token: carolTok})
		if ce, ok := sioclient.IsConnectError(err); !ok || !strings.Contains(string(ce.Data), "invalid_token") || !strings.Contains(ce.Message, "revoked") {
			t.Errorf("connect with the revoked token on %s: %v", base, err)
		}
	}
	_, err := sioclient.Dial(context.Background(), api1, &sioclient.Options{Token: carolTok, PID: heldPID, Offset: heldOffset})
	if _, ok := sioclient.IsConnectError(err); !ok {
		t.Errorf("recovery with the revoked token: %v", err)
	}
	anon, err := sioclient.Dial(context.Background(), api1, &sioclient.Options{PID: heldPID, Offset: heldOffset})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(anon.Drop)
	if anon.Recovered {
		t.Error("carol's held socket was recovered after the disconnect")
	}
	raw, err := anon.EmitAck(testkit.Within(t, 5*time.Second), schemas.EventAuthenticate, map[string]string{"token": carolTok})
	if err != nil || !strings.Contains(string(raw), `"invalid_token"`) {
		t.Errorf("authenticate with the revoked token: %s %v", raw, err)
	}
	// A token issued after the revocation works.
	time.Sleep(1100 * time.Millisecond)
	fresh := users.Dial(t, api2, "carol", "Carol")
	testkit.MustAck(t, fresh, schemas.EventJoinRoom, map[string]string{"roomId": "design"})

	// The operators' commands: the same reads and disconnect.
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(d.connectors[0].Bin(), args...)
		cmd.Env = d.cliEnv()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("roomstream %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := cli("rooms", "list"); !strings.Contains(out, "design") {
		t.Errorf("rooms list:\n%s", out)
	}
	room = schemas.RoomSnapshot{}
	if out := cli("rooms", "show", "-room", "design", "-json"); json.Unmarshal([]byte(out), &room) != nil || len(room.Members) != 2 || len(room.Files) != 1 {
		t.Errorf("rooms show:\n%s", out)
	}
	if out := cli("users", "show", "-user", "carol"); !strings.Contains(out, "live, connected") || !strings.Contains(out, "conn2") {
		t.Errorf("users show:\n%s", out)
	}
	if out := cli("users", "disconnect", "-user", "carol", "-reason", "from the CLI"); !strings.Contains(out, "1 socket(s) of carol told to close on conn2") {
		t.Errorf("users disconnect:\n%s", out)
	}
	select {
	case <-fresh.Done():
	case <-time.After(time.Second):
		t.Error("carol's socket still open 1s after roomstream users disconnect")
	}

	// The audit log shows the API's commands with their origin.
	tl := exec.Command(d.connectors[0].Bin(), "replay", "timeline", "-room", "design", "-format", "jsonl")
	tl.Env = d.cliEnv()
	out, err := tl.Output()
	if err != nil {
		t.Fatalf("replay timeline: %v", err)
	}
	byAPI := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var e struct{ Type, Origin, Outcome string }
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("timeline line %q: %v", line, err)
		}
		if e.Origin == "api" {
			byAPI[e.Type+" "+e.Outcome]++
		} else if e.Type == schemas.CmdPublish || e.Type == schemas.CmdOperatorUnlock || e.Type == schemas.CmdRemoveMember {
			t.Errorf("an API command without its origin: %s", line)
		}
	}
	// 5 app:step, file-added, app:paid (once), app:after; one unlock; one removal.
	wantAPI := map[string]int{"server-event applied": 8, "operator-unlock applied": 1, "member-remove applied": 1}
	if fmt.Sprint(byAPI) != fmt.Sprint(wantAPI) {
		t.Errorf("API commands in the timeline: %v, want %v", byAPI, wantAPI)
	}
}

// TestPublishAfterIdempotencyKeyExpired: a publish whose Idempotency-Key
// record has expired (24 h on; deleted here) is a new request: the
// room's members receive it again, where a retry within the record's
// life reaches them once.
func TestPublishAfterIdempotencyKeyExpired(t *testing.T) {
	d := deploy(t, 1, 1, false, "ROOMSTREAM_API_KEY", apiKey)
	base := d.connectors[0].URL()
	alice := users.Dial(t, base, "alice", "Alice")
	testkit.MustAck(t, alice, schemas.EventJoinRoom, map[string]string{"roomId": "shop"})
	publish := func(event string) {
		t.Helper()
		status, body := call(t, base, apiKey, "POST", "/api/v1/rooms/shop/events", map[string]any{"event": event, "data": map[string]int{"order": 42}}, "Idempotency-Key", "order-42")
		if status != http.StatusAccepted {
			t.Fatalf("publish: %d %s", status, body)
		}
	}
	publish("app:paid")
	publish("app:paid") // a retry: delivered once
	sum := sha256.Sum256([]byte("shop\x00order-42"))
	rdb := d.client()
	if err := rdb.Del(context.Background(), d.streams().Keys.Idempotency(hex.EncodeToString(sum[:12]))).Err(); err != nil {
		t.Fatal(err)
	}
	publish("app:paid") // the record expired: a new request
	call(t, base, apiKey, "POST", "/api/v1/rooms/shop/events", map[string]any{"event": "app:after"})
	var got []string
	for _, ev := range collect(t, alice, "app:after", 300*time.Millisecond, "app:paid") {
		got = append(got, ev.Name)
	}
	if strings.Join(got, "|") != "app:paid|app:paid|app:after" {
		t.Errorf("alice received %v, want app:paid twice (before and after the key's record expired), then app:after", got)
	}
}
