package connector

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/roomstream/roomstream/connector/auth"
	"github.com/roomstream/roomstream/e2e/sioclient"
	"github.com/roomstream/roomstream/e2e/testkit"
	"github.com/roomstream/roomstream/schemas"
)

// roomsToken signs a token for user whose rooms claim is rooms (nil: no
// claim).
func roomsToken(t *testing.T, user string, rooms ...string) string {
	t.Helper()
	tok, err := auth.SignToken(auth.HS256Key(testSecret), auth.TokenClaims{UserID: user, UserName: user, TTL: time.Hour, Rooms: rooms})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// joinCode joins room and returns the refusal code ("" when admitted).
func joinCode(t *testing.T, c *sioclient.Client, room string) schemas.Code {
	t.Helper()
	a := ack(t, c, schemas.EventJoinRoom, map[string]string{"roomId": room})
	if a.OK {
		return ""
	}
	return a.Error.Code
}

// TestRoomAccessClaims: with ROOM_ACCESS=claims a socket joins the rooms
// its token's rooms claim names (ids and prefixes) and no other; a token
// without the claim joins none, and a malformed claim is an invalid
// token, at CONNECT and at authenticate.
func TestRoomAccessClaims(t *testing.T) {
	e := start(t, func(c *Config) { c.RoomAccess = AccessClaims })
	alice := dial(t, e, roomsToken(t, "alice", "design", "team-*"))
	for room, want := range map[string]schemas.Code{"design": "", "team-a": "", "team-": "", "designs": schemas.CodeForbidden, "other": schemas.CodeForbidden} {
		if got := joinCode(t, alice, room); got != want {
			t.Errorf("alice (rooms design, team-*) joins %s: %q, want %q", room, got, want)
		}
	}
	bob := dial(t, e, token(t, "bob", "Bob", time.Hour))
	if got := joinCode(t, bob, "design"); got != schemas.CodeForbidden {
		t.Errorf("a token without a rooms claim joins design: %q", got)
	}
	if n := metric(t, e, "roomstream_connector_room_access_total", "result", "forbidden"); n != 3 {
		t.Errorf("room access metric: %v forbidden, want 3", n)
	}

	// A signed token whose rooms claim is not a list.
	bad := signClaims(t, map[string]any{"sub": "carol", "exp": time.Now().Add(time.Hour).Unix(), "rooms": "design"})
	_, err := sioclient.Dial(context.Background(), e.base, &sioclient.Options{Token: bad})
	if ce, ok := sioclient.IsConnectError(err); !ok || !strings.Contains(string(ce.Data), string(schemas.CodeInvalidToken)) || !strings.Contains(ce.Message, "rooms") {
		t.Errorf("CONNECT with a malformed rooms claim: %v", err)
	}
	anon := dial(t, e, "")
	raw, err := anon.EmitAck(testkit.Within(t, 5*time.Second), schemas.EventAuthenticate, map[string]string{"token": bad})
	if err != nil || !strings.Contains(string(raw), string(schemas.CodeInvalidToken)) {
		t.Errorf("authenticate with a malformed rooms claim: %s %v", raw, err)
	}
}

// signClaims signs arbitrary claims with the harness's secret.
func signClaims(t *testing.T, claims map[string]any) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(claims)).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestRoomAccessOpenIgnoresRoomsClaim: by default (open) the rooms claim
// means nothing, malformed or not.
func TestRoomAccessOpenIgnoresRoomsClaim(t *testing.T) {
	e := start(t, nil)
	c := dial(t, e, signClaims(t, map[string]any{"sub": "carol", "exp": time.Now().Add(time.Hour).Unix(), "rooms": 7}))
	if got := joinCode(t, c, "anything"); got != "" {
		t.Errorf("open access refused a join: %q", got)
	}
}

// accessBackend is a test room access backend: rooms named allow-* are
// allowed, slow-* answer after delay, fail-* answer 500, maybe-* answer
// 200 without allow; the rest 403.
type accessBackend struct {
	*httptest.Server
	calls atomic.Int64
	delay time.Duration
	mu    sync.Mutex
	last  map[string]json.RawMessage
}

func newAccessBackend(t *testing.T, delay time.Duration) *accessBackend {
	b := &accessBackend{delay: delay}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.calls.Add(1)
		var req map[string]json.RawMessage
		if r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&req) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		b.mu.Lock()
		b.last = req
		b.mu.Unlock()
		var room string
		_ = json.Unmarshal(req["roomId"], &room)
		switch {
		case strings.HasPrefix(room, "allow-"):
			_, _ = w.Write([]byte(`{"allow":true}`))
		case strings.HasPrefix(room, "slow-"):
			select {
			case <-time.After(b.delay):
			case <-r.Context().Done():
			}
			_, _ = w.Write([]byte(`{"allow":true}`))
		case strings.HasPrefix(room, "fail-"):
			http.Error(w, "down", http.StatusInternalServerError)
		case strings.HasPrefix(room, "maybe-"):
			_, _ = w.Write([]byte(`{"allow":"yes"}`))
		default:
			http.Error(w, "no", http.StatusForbidden)
		}
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *accessBackend) lastRequest() map[string]json.RawMessage {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

// TestRoomAccessProxy: with ROOM_ACCESS=proxy the backend decides each
// join from {userId, roomId, claims}: 200 {"allow": true} admits, any
// other answer is forbidden, a timeout or a 5xx is unavailable (the join
// may be sent again); answers are reused within ROOM_ACCESS_CACHE.
func TestRoomAccessProxy(t *testing.T) {
	b := newAccessBackend(t, 2*time.Second)
	e := start(t, func(c *Config) {
		c.RoomAccess, c.RoomAccessURL, c.RoomAccessTimeout, c.RoomAccessCache = AccessProxy, b.URL, 300*time.Millisecond, time.Minute
	})
	alice := dial(t, e, signClaims(t, map[string]any{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix(), "org": "acme"}))
	for _, tc := range []struct {
		room string
		want schemas.Code
	}{
		{"allow-1", ""}, {"deny-1", schemas.CodeForbidden}, {"maybe-1", schemas.CodeForbidden},
		{"fail-1", schemas.CodeUnavailable}, {"slow-1", schemas.CodeUnavailable},
	} {
		if got := joinCode(t, alice, tc.room); got != tc.want {
			t.Errorf("join %s: %q, want %q", tc.room, got, tc.want)
		}
	}
	req := b.lastRequest()
	var claims map[string]any
	if string(req["userId"]) != `"alice"` || string(req["roomId"]) != `"slow-1"` || json.Unmarshal(req["claims"], &claims) != nil || claims["org"] != "acme" {
		t.Errorf("the backend was asked %v", req)
	}
	// Cached: leaving and joining again asks nothing; refusals are cached
	// too, failures are not.
	calls := b.calls.Load()
	if got := ack(t, alice, schemas.EventLeaveRoom, map[string]string{"roomId": "allow-1"}); !got.OK {
		t.Fatalf("leave: %+v", got.Error)
	}
	if got := joinCode(t, alice, "allow-1"); got != "" {
		t.Errorf("join again: %q", got)
	}
	if got := joinCode(t, alice, "deny-1"); got != schemas.CodeForbidden {
		t.Errorf("a cached refusal: %q", got)
	}
	if got := joinCode(t, alice, "fail-1"); got != schemas.CodeUnavailable {
		t.Errorf("a failure again: %q", got)
	}
	if n := b.calls.Load() - calls; n != 1 {
		t.Errorf("%d requests for a cached allow, a cached refusal and a failure, want 1 (the failure)", n)
	}
}

// TestRoomAccessProxyConcurrency: requests in flight to the backend are
// bounded (ROOM_ACCESS_CONCURRENCY): a join that finds no slot free
// within the timeout is unavailable, not queued without end.
func TestRoomAccessProxyConcurrency(t *testing.T) {
	b := newAccessBackend(t, 700*time.Millisecond)
	e := start(t, func(c *Config) {
		c.RoomAccess, c.RoomAccessURL, c.RoomAccessTimeout, c.RoomAccessConcurrency = AccessProxy, b.URL, time.Second, 1
	})
	first, second := dial(t, e, token(t, "alice", "Alice", time.Hour)), dial(t, e, token(t, "bob", "Bob", time.Hour))
	var wg sync.WaitGroup
	codes := make([]schemas.Code, 2)
	for i, c := range []*sioclient.Client{first, second} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 1 {
				time.Sleep(100 * time.Millisecond) // the first holds the slot
			}
			codes[i] = joinCode(t, c, "slow-"+c.SID)
		}()
	}
	wg.Wait()
	if codes[0] != "" || codes[1] != schemas.CodeUnavailable {
		t.Errorf("two joins, one backend slot, answers taking 0.7 s, a 1 s timeout: %q, %q; want admitted, unavailable", codes[0], codes[1])
	}
}

// TestReauthenticateLeavesRevokedRooms: a fresh token given through
// `authenticate` replaces the socket's claims; the rooms it no longer
// allows are left, and the other members hear user-left with reason
// access_revoked.
func TestReauthenticateLeavesRevokedRooms(t *testing.T) {
	e := start(t, func(c *Config) { c.RoomAccess = AccessClaims })
	alice := dial(t, e, roomsToken(t, "alice", "a", "b"))
	bob := dial(t, e, roomsToken(t, "bob", "a", "b"))
	for _, c := range []*sioclient.Client{alice, bob} {
		for _, r := range []string{"a", "b"} {
			if got := joinCode(t, c, r); got != "" {
				t.Fatalf("join %s: %q", r, got)
			}
		}
	}
	if a := ack(t, alice, schemas.EventAuthenticate, map[string]string{"token": roomsToken(t, "alice", "b")}); !a.OK {
		t.Fatalf("authenticate: %+v", a.Error)
	}
	ev := testkit.WaitFor(t, bob, schemas.EventUserLeft, `"userId":"alice"`)
	var left schemas.UserLeftPayload
	if err := ev.Decode(&left); err != nil || left.RoomID != "a" || left.Reason != schemas.ReasonAccessRevoked {
		t.Errorf("bob heard %s, want alice leaving a with reason access_revoked", ev.Args[0])
	}
	if a := ack(t, alice, schemas.EventLockRoom, map[string]string{"roomId": "a"}); a.OK || a.Error.Code != schemas.CodeNotMember {
		t.Errorf("alice locks a after leaving it: %+v", a)
	}
	if a := ack(t, alice, schemas.EventLockRoom, map[string]string{"roomId": "b"}); !a.OK {
		t.Errorf("alice locks b, which her new token allows: %+v", a.Error)
	}
}

// TestConfigRoomAccess: the ROOM_ACCESS settings are checked and the
// variable at fault is named.
func TestConfigRoomAccess(t *testing.T) {
	for _, tc := range []struct {
		tweak func(*Config)
		want  string
	}{
		{func(c *Config) { c.RoomAccess = "maybe" }, "ROOMSTREAM_ROOM_ACCESS must be open, claims or proxy"},
		{func(c *Config) { c.RoomAccess = AccessProxy }, "needs ROOMSTREAM_ROOM_ACCESS_URL"},
		{func(c *Config) { c.RoomAccess, c.RoomAccessURL = AccessProxy, "ftp://x" }, "ROOMSTREAM_ROOM_ACCESS_URL must be"},
		{func(c *Config) { c.RoomAccessURL = "http://x" }, "ROOMSTREAM_ROOM_ACCESS_URL is set but"},
		{func(c *Config) { c.RoomAccess, c.RoomAccessURL, c.RoomAccessTimeout = AccessProxy, "http://x", 0 }, "ROOMSTREAM_ROOM_ACCESS_TIMEOUT"},
		{func(c *Config) { c.RoomAccess, c.RoomAccessURL, c.RoomAccessConcurrency = AccessProxy, "http://x", 0 }, "ROOMSTREAM_ROOM_ACCESS_CONCURRENCY"},
		{func(c *Config) { c.RoomCreateRate = -1 }, "ROOMSTREAM_ROOM_CREATE_RATE"},
		{func(c *Config) { c.RoomAccess, c.RoomAccessURL = AccessProxy, "https://auth.example/rooms" }, ""},
	} {
		var c Config
		defaults(t, &c)
		c.JWTSecret = testSecret
		tc.tweak(&c)
		err := c.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", c.RoomAccess, err, tc.want)
		}
	}
}

// TestRecoveryLeavesRevokedRooms: a socket recovered with a token that
// allows fewer rooms leaves the others, as after `authenticate`.
func TestRecoveryLeavesRevokedRooms(t *testing.T) {
	e := start(t, func(c *Config) { c.RoomAccess = AccessClaims })
	alice := dial(t, e, roomsToken(t, "alice", "a", "b"))
	bob := dial(t, e, roomsToken(t, "bob", "a"))
	for _, r := range []string{"a", "b"} {
		if got := joinCode(t, alice, r); got != "" {
			t.Fatalf("join %s: %q", r, got)
		}
	}
	if got := joinCode(t, bob, "a"); got != "" {
		t.Fatalf("bob joins a: %q", got)
	}
	sid, pid, offset := alice.SID, alice.PID, alice.Offset()
	alice.Drop()
	e.awaitHeld(t, sid)
	r, err := sioclient.Dial(context.Background(), e.base, &sioclient.Options{Token: roomsToken(t, "alice", "b"), PID: pid, Offset: offset})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	if !r.Recovered {
		t.Fatal("not recovered")
	}
	ev := testkit.WaitFor(t, bob, schemas.EventUserLeft, `"userId":"alice"`)
	if !strings.Contains(string(ev.Args[0]), `"reason":"access_revoked"`) {
		t.Errorf("bob heard %s", ev.Args[0])
	}
}
