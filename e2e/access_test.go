package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/roomstream/roomstream/connector/auth"
	"github.com/roomstream/roomstream/e2e/sioclient"
	"github.com/roomstream/roomstream/e2e/testkit"
	"github.com/roomstream/roomstream/schemas"
)

// roomsToken signs a token of user, valid for ttl, whose rooms claim is
// rooms.
func roomsToken(t *testing.T, user string, ttl time.Duration, rooms ...string) string {
	t.Helper()
	tok, err := auth.SignToken(auth.HS256Key(secret), auth.TokenClaims{UserID: user, UserName: user, TTL: ttl, Rooms: rooms})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// joinCode joins room and returns the refusal code ("" when admitted).
func joinCode(t *testing.T, c *sioclient.Client, room string) schemas.Code {
	t.Helper()
	a := testkit.Ack(t, c, schemas.EventJoinRoom, map[string]string{"roomId": room})
	if a.OK {
		return ""
	}
	return a.Error.Code
}

// TestRoomAccessByClaims: with ROOMSTREAM_ROOM_ACCESS=claims, real
// clients join the rooms their token's rooms claim allows and are refused
// the others (forbidden); a fresh token through `authenticate` that drops
// a room makes the socket leave it, and another member hears user-left
// (access_revoked). A token living longer than a revocation lasts
// (API_REVOKE_TTL) is refused at connect.
func TestRoomAccessByClaims(t *testing.T) {
	d := deploy(t, 1, 1, false, "ROOMSTREAM_ROOM_ACCESS", "claims", "ROOMSTREAM_API_REVOKE_TTL", "2h")
	url := d.connectors[0].URL()
	dial := func(tok string) *sioclient.Client {
		t.Helper()
		return testkit.Dial(t, url, &sioclient.Options{Token: tok})
	}
	alice := dial(roomsToken(t, "alice", time.Hour, "design", "team-*"))
	bob := dial(roomsToken(t, "bob", time.Hour, "design"))
	for room, want := range map[string]schemas.Code{"design": "", "team-a": "", "sales": schemas.CodeForbidden} {
		if got := joinCode(t, alice, room); got != want {
			t.Errorf("alice (rooms design, team-*) joins %s: %q, want %q", room, got, want)
		}
	}
	if got := joinCode(t, bob, "team-a"); got != schemas.CodeForbidden {
		t.Errorf("bob (rooms design) joins team-a: %q", got)
	}
	if got := joinCode(t, bob, "design"); got != "" {
		t.Fatalf("bob joins design: %q", got)
	}
	noClaim := users.Dial(t, url, "carol", "Carol")
	if got := joinCode(t, noClaim, "design"); got != schemas.CodeForbidden {
		t.Errorf("a token without a rooms claim joins design: %q", got)
	}

	// Alice's new token keeps team-* only.
	if a := testkit.Ack(t, alice, schemas.EventAuthenticate, map[string]string{"token": roomsToken(t, "alice", time.Hour, "team-*")}); !a.OK {
		t.Fatalf("authenticate: %+v", a.Error)
	}
	ev := testkit.WaitFor(t, bob, schemas.EventUserLeft, `"userId":"alice"`)
	var left schemas.UserLeftPayload
	if err := ev.Decode(&left); err != nil || left.RoomID != "design" || left.Reason != schemas.ReasonAccessRevoked {
		t.Errorf("bob heard %s, want alice leaving design (access_revoked)", ev.Args[0])
	}
	if got := joinCode(t, alice, "design"); got != schemas.CodeForbidden {
		t.Errorf("alice joins design again with her new token: %q", got)
	}

	// Revocations last 2 h here: a 3 h token is refused.
	_, err := sioclient.Dial(context.Background(), url, &sioclient.Options{Token: roomsToken(t, "dave", 3*time.Hour, "design")})
	if ce, ok := sioclient.IsConnectError(err); !ok || !strings.Contains(string(ce.Data), string(schemas.CodeInvalidToken)) || !strings.Contains(ce.Message, "revocations last") {
		t.Errorf("a token outliving API_REVOKE_TTL: %v", err)
	}
}

// TestRoomAccessByProxy: with ROOMSTREAM_ROOM_ACCESS=proxy, the
// connector process asks a backend before each join: an allow admits, a
// refusal is forbidden, a backend that does not answer in time is
// unavailable; the backend sees the user, the room and the token's claims.
func TestRoomAccessByProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	asked := make(chan map[string]json.RawMessage, 16)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req map[string]json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		select {
		case asked <- req:
		default:
		}
		switch string(req["roomId"]) {
		case `"open-room"`:
			_, _ = w.Write([]byte(`{"allow":true}`))
		case `"slow-room"`:
			select {
			case <-time.After(3 * time.Second):
			case <-r.Context().Done():
			}
			_, _ = w.Write([]byte(`{"allow":true}`))
		default:
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"allow":false}`))
		}
	}))
	t.Cleanup(backend.Close)
	d := deploy(t, 1, 1, false, "ROOMSTREAM_ROOM_ACCESS", "proxy", "ROOMSTREAM_ROOM_ACCESS_URL", backend.URL,
		"ROOMSTREAM_ROOM_ACCESS_TIMEOUT", "500ms")
	alice := users.Dial(t, d.connectors[0].URL(), "alice", "Alice")
	for _, tc := range []struct {
		room string
		want schemas.Code
	}{{"open-room", ""}, {"closed-room", schemas.CodeForbidden}, {"slow-room", schemas.CodeUnavailable}} {
		start := time.Now()
		if got := joinCode(t, alice, tc.room); got != tc.want {
			t.Errorf("join %s: %q, want %q", tc.room, got, tc.want)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("join %s answered after %s (timeout 500ms)", tc.room, took)
		}
	}
	req := <-asked
	var claims map[string]any
	if string(req["userId"]) != `"alice"` || string(req["roomId"]) != `"open-room"` || json.Unmarshal(req["claims"], &claims) != nil || claims["sub"] != "alice" {
		t.Errorf("the backend was asked %v", req)
	}
}
