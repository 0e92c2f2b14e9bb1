package connector

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/roomstream/roomstream/connector/auth"
	"github.com/roomstream/roomstream/e2e/sioclient"
	"github.com/roomstream/roomstream/infra/testredis"
	"github.com/roomstream/roomstream/schemas"
)

func TestEngineIOErrors(t *testing.T) {
	e := start(t, nil)
	for _, tc := range []struct {
		query  string
		method string
		status int
		body   string
	}{
		{"EIO=4&transport=flashsocket&t=x", "GET", 400, `{"code":0,"message":"Transport unknown"}`},
		{"EIO=4&transport=polling&sid=abc", "GET", 400, `{"code":1,"message":"Session ID unknown"}`},
		{"EIO=4&transport=polling&sid=c-gone.abc", "POST", 400, `{"code":1,"message":"Session ID unknown"}`}, // a connector that never advertised
		{"EIO=4&transport=polling&j=0", "GET", 400, `{"code":3,"message":"Bad request"}`},                    // JSONP is not served
		{"EIO=3&transport=websocket", "GET", 400, `{"code":5,"message":"Unsupported protocol version"}`},
		{"EIO=4&transport=websocket&sid=abc", "GET", 400, `{"code":1,"message":"Session ID unknown"}`},
		{"EIO=4&transport=websocket", "GET", 400, `{"code":3,"message":"Bad request"}`}, // no Upgrade header
		{"EIO=4&transport=polling", "POST", 400, `{"code":2,"message":"Bad handshake method"}`},
	} {
		req, _ := http.NewRequest(tc.method, e.base+"/socket.io/?"+tc.query, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.status || strings.TrimSpace(string(b)) != tc.body {
			t.Errorf("%s %s: %d %s, want %d %s", tc.method, tc.query, res.StatusCode, b, tc.status, tc.body)
		}
	}
}

func TestHandshakeAndAuth(t *testing.T) {
	e := start(t, nil)
	// The open packet carries the configured timings.
	ws, _, err := websocket.Dial(waitCtx(t), strings.Replace(e.base, "http", "ws", 1)+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, open, err := ws.Read(waitCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	var hs struct {
		SID          string   `json:"sid"`
		Upgrades     []string `json:"upgrades"`
		PingInterval int      `json:"pingInterval"`
		PingTimeout  int      `json:"pingTimeout"`
		MaxPayload   int      `json:"maxPayload"`
	}
	if open[0] != '0' || json.Unmarshal(open[1:], &hs) != nil || hs.SID == "" || hs.Upgrades == nil || len(hs.Upgrades) != 0 ||
		hs.PingInterval != 25000 || hs.PingTimeout != 20000 || hs.MaxPayload != DefaultMaxPayload {
		t.Errorf("open packet %s", open)
	}
	ws.CloseNow()

	for _, tc := range []struct {
		name, tok string
		code      schemas.Code
	}{
		{"garbage", "not.a.jwt", schemas.CodeInvalidToken},
		{"expired", token(t, "alice", "Alice", -time.Minute), schemas.CodeExpiredToken},
		{"wrong secret", func() string { s, _ := auth.Sign("another-secret-0123456", "alice", "A", time.Hour); return s }(), schemas.CodeInvalidToken},
	} {
		_, err := sioclient.Dial(context.Background(), e.base, &sioclient.Options{Token: tc.tok})
		ce, ok := sioclient.IsConnectError(err)
		if !ok {
			t.Errorf("%s: %v, want a connect_error", tc.name, err)
			continue
		}
		var data struct {
			Code   schemas.Code `json:"code"`
			Reason string       `json:"reason"`
		}
		_ = json.Unmarshal(ce.Data, &data)
		if data.Code != tc.code || !strings.HasPrefix(ce.Message, "authentication failed: ") || data.Reason == "" {
			t.Errorf("%s: connect_error %q %s, want code %s", tc.name, ce.Message, ce.Data, tc.code)
		}
	}

	// Connected with a token: authentication_successful with a session.
	c := dial(t, e, token(t, "alice", "Alice", time.Hour))
	ev, err := c.Wait(waitCtx(t), schemas.EventAuthSuccessful)
	if err != nil {
		t.Fatal(err)
	}
	var ok schemas.AuthSuccessPayload
	if ev.Decode(&ok); ok.UserID != "alice" || ok.SessionID == "" || c.PID == "" || ev.Offset == "" {
		t.Errorf("authentication_successful %+v pid %q offset %q", ok, c.PID, ev.Offset)
	}
}

func TestAuthenticateEvent(t *testing.T) {
	e := start(t, nil)
	c := dial(t, e, "")
	// Nothing but authenticate is accepted before authenticating.
	a := ack(t, c, schemas.EventJoinRoom, map[string]string{"roomId": "r1"})
	if a.OK || a.Error.Code != schemas.CodeUnauthorized {
		t.Fatalf("join before auth: %+v", a)
	}
	if err := c.Emit(waitCtx(t), schemas.EventAuthenticate, map[string]string{"token": token(t, "bob", "Bob", -time.Hour)}); err != nil {
		t.Fatal(err)
	}
	ev, err := c.Wait(waitCtx(t), schemas.EventAuthFailed)
	if err != nil {
		t.Fatal(err)
	}
	var fail schemas.AuthFailurePayload
	if ev.Decode(&fail); fail.Code != schemas.CodeExpiredToken || fail.Reason == "" {
		t.Errorf("authentication_failed %+v", fail)
	}
	a = ack(t, c, schemas.EventAuthenticate, map[string]string{"token": token(t, "bob", "Bob", time.Hour)})
	if !a.OK || a.Auth == nil || a.Auth.UserID != "bob" || a.Auth.SessionID == "" {
		t.Fatalf("authenticate ack %+v", a)
	}
	if _, err := c.Wait(waitCtx(t), schemas.EventAuthSuccessful); err != nil {
		t.Fatal(err)
	}
	if a := ack(t, c, schemas.EventJoinRoom, map[string]string{"roomId": "r1"}); !a.OK || a.Room == nil || a.Room.Members[0].UserName != "Bob" {
		t.Fatalf("join after auth: %+v", a)
	}
}

func TestRoomFlowBetweenClients(t *testing.T) {
	e := start(t, nil)
	a := dial(t, e, token(t, "alice", "Alice", time.Hour))
	b := dial(t, e, token(t, "bob", "Bob", time.Hour))
	if r := ack(t, a, schemas.EventJoinRoom, map[string]string{"roomId": "r1", "userId": "alice"}); !r.OK {
		t.Fatalf("alice join: %+v", r)
	}
	if r := ack(t, b, schemas.EventJoinRoom, map[string]string{"roomId": "r1"}); !r.OK || len(r.Room.Members) != 2 {
		t.Fatalf("bob join: %+v", r)
	}
	ev, err := a.Wait(waitCtx(t), schemas.EventUserJoined)
	for err == nil && !strings.Contains(string(ev.Args[0]), `"bob"`) {
		ev, err = a.Wait(waitCtx(t), schemas.EventUserJoined)
	}
	if err != nil {
		t.Fatal(err)
	}
	if r := ack(t, b, schemas.EventLockRoom, map[string]string{"roomId": "r1", "reason": "mine"}); !r.OK {
		t.Fatalf("bob lock: %+v", r)
	}
	ev, err = a.Wait(waitCtx(t), schemas.EventRoomLocked)
	if err != nil {
		t.Fatal(err)
	}
	var locked schemas.RoomLockedPayload
	if ev.Decode(&locked); locked.LockedBy != "bob" || locked.LockedByName != "Bob" || locked.Reason != "mine" {
		t.Errorf("room-locked %+v", locked)
	}
	r := ack(t, a, schemas.EventFileUploadProgress, map[string]any{"fileId": "f", "uploadId": "u", "fileName": "x", "roomId": "r1",
		"bytesUploaded": 1, "totalBytes": 2, "percentage": 50})
	if r.OK || r.Error.Code != schemas.CodeRoomLocked {
		t.Errorf("progress in a room locked by another: %+v", r)
	}
	// Without an ack, the refusal comes as an error event.
	if err := a.Emit(waitCtx(t), schemas.EventLockRoom, map[string]string{"roomId": "r1"}); err != nil {
		t.Fatal(err)
	}
	ev, err = a.Wait(waitCtx(t), schemas.EventError)
	if err != nil {
		t.Fatal(err)
	}
	var se schemas.Error
	if ev.Decode(&se); se.Code != schemas.CodeRoomLocked || se.Event != schemas.EventLockRoom || se.RoomID != "r1" {
		t.Errorf("error event %+v", se)
	}
}

// TestAppendOutlastsRedisRestart: Redis goes away for longer than the
// Redis client's own retries last; an event sent meanwhile is appended
// once Redis is back and the sender gets its ack, not `unavailable`.
func TestAppendOutlastsRedisRestart(t *testing.T) {
	e := startOn(t, testredis.Start(t, &testredis.Options{AOF: true}), nil)
	a := dial(t, e, token(t, "alice", "Alice", time.Hour))
	if r := ack(t, a, schemas.EventJoinRoom, map[string]string{"roomId": "r1"}); !r.OK {
		t.Fatalf("join: %+v", r)
	}
	e.redis.Kill()
	down := time.Now()
	restarted := make(chan struct{})
	go func() {
		defer close(restarted)
		time.Sleep(2500 * time.Millisecond)
		e.redis.Start()
	}()
	// The ack may come while Start still waits for Redis to answer: the
	// test ends (and its cleanup kills Redis) only after the restart.
	defer func() { <-restarted }()
	// The append waits for Redis; the apply then waits for a worker that
	// may have to take its partition lease back: 30 s, not ack's 10.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	raw, err := a.EmitAck(ctx, schemas.EventLockRoom, map[string]string{"roomId": "r1", "reason": "while Redis restarts"})
	if err != nil {
		t.Fatalf("lock sent while Redis was down: %v", err)
	}
	var r schemas.Ack
	if err := json.Unmarshal(raw, &r); err != nil || !r.OK {
		t.Fatalf("lock sent while Redis was down: %+v", r)
	}
	if waited := time.Since(down); waited < 2500*time.Millisecond {
		t.Errorf("acknowledged after %s, before Redis came back", waited)
	}
	if locked := e.c.Redis().HGet(context.Background(), "t:room:{r1}", "lockedBy").Val(); locked != "alice" {
		t.Errorf("room locked by %q after the restart, want alice", locked)
	}
}

func TestBadInput(t *testing.T) {
	e := start(t, func(c *Config) { c.RateLimit, c.RateBurst = 5, 5; c.MaxPayload = 4096 })
	c := dial(t, e, token(t, "alice", "Alice", time.Hour))
	for _, tc := range []struct {
		event   string
		payload any
		code    schemas.Code
		field   string
	}{
		{schemas.EventJoinRoom, map[string]string{"roomId": "r1", "userId": "mallory"}, schemas.CodeForbidden, "userId"},
		{schemas.EventJoinRoom, map[string]string{}, schemas.CodeInvalidPayload, "roomId"},
		{schemas.EventJoinRoom, map[string]string{"roomId": "{bad}"}, schemas.CodeInvalidPayload, "roomId"},
		{schemas.EventFileUploadProgress, map[string]any{"fileId": "f", "uploadId": "u", "fileName": "x", "roomId": "r",
			"bytesUploaded": 3, "totalBytes": 2, "percentage": 50}, schemas.CodeInvalidPayload, "bytesUploaded"},
		{"shutdown-everything", map[string]string{}, schemas.CodeUnknownEvent, ""},
	} {
		r := ack(t, c, tc.event, tc.payload)
		if r.OK || r.Error.Code != tc.code || r.Error.Field != tc.field {
			t.Errorf("%s %v: %+v, want %s on %q", tc.event, tc.payload, r.Error, tc.code, tc.field)
		}
	}
	// Flood: beyond the burst, events are refused with rate_limited.
	limited := 0
	for i := 0; i < 20; i++ {
		r := ack(t, c, schemas.EventLeaveRoom, map[string]string{"roomId": "r1"})
		if !r.OK && r.Error.Code == schemas.CodeRateLimited {
			limited++
		}
	}
	if limited == 0 {
		t.Error("20 events at once were not rate limited")
	}
	// An oversized frame closes the connection with 1009; the server lives on.
	big := `42["join-room",{"roomId":"` + strings.Repeat("x", 5000) + `"}]`
	_ = c.EmitRaw(waitCtx(t), []byte(big))
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("oversized frame did not close the connection")
	}
	// A CONNECT to another namespace is answered with a CONNECT_ERROR for
	// that namespace, and the connection stays.
	ws, _, err := websocket.Dial(waitCtx(t), strings.Replace(e.base, "http", "ws", 1)+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	readUntil := func(prefix string) string {
		t.Helper()
		for {
			_, f, err := ws.Read(waitCtx(t))
			if err != nil {
				t.Fatalf("waiting for %q: %v", prefix, err)
			}
			if string(f) == "2" {
				_ = ws.Write(waitCtx(t), websocket.MessageText, []byte("3"))
			}
			if strings.HasPrefix(string(f), prefix) {
				return string(f)
			}
		}
	}
	readUntil("0{")
	_ = ws.Write(waitCtx(t), websocket.MessageText, []byte(`40{"token":"`+token(t, "bob", "Bob", time.Hour)+`"}`))
	readUntil("40{")
	_ = ws.Write(waitCtx(t), websocket.MessageText, []byte("40/nsp,"))
	if f := readUntil("44"); f != `44/nsp,{"message":"Invalid namespace"}` {
		t.Errorf("CONNECT to /nsp answered %s, want a CONNECT_ERROR for /nsp", f)
	}
	_ = ws.Write(waitCtx(t), websocket.MessageText, []byte(`420["join-room",{"roomId":"r1"}]`))
	if f := readUntil("430"); !strings.Contains(f, `"ok":true`) {
		t.Errorf("main namespace after the CONNECT_ERROR: %s", f)
	}
	// Malformed packets close only their own connection.
	for _, frame := range []string{"4x", "42{", "9", `42["connect"]`} {
		d := dial(t, e, token(t, "bob", "Bob", time.Hour))
		_ = d.EmitRaw(waitCtx(t), []byte(frame))
		select {
		case <-d.Done():
		case <-time.After(5 * time.Second):
			t.Errorf("frame %q did not close the connection", frame)
		}
	}
	d := dial(t, e, token(t, "carol", "Carol", time.Hour))
	if r := ack(t, d, schemas.EventJoinRoom, map[string]string{"roomId": "r1"}); !r.OK {
		t.Errorf("server unwell after bad input: %+v", r)
	}
}

func TestPingTimeout(t *testing.T) {
	e := start(t, func(c *Config) { c.PingInterval, c.PingTimeout = 200*time.Millisecond, 150*time.Millisecond })
	ws, _, err := websocket.Dial(waitCtx(t), strings.Replace(e.base, "http", "ws", 1)+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	pings := 0
	began := time.Now()
	for {
		_, msg, err := ws.Read(waitCtx(t))
		if err != nil {
			break // closed by the server: we never answered
		}
		if string(msg) == "2" {
			pings++
		}
	}
	// The server's clock starts a moment before ours, when it sends the
	// open packet: hence 250 ms, not 350, as the lower bound.
	if took := time.Since(began); pings != 1 || took < 250*time.Millisecond || took > 2*time.Second {
		t.Errorf("closed after %d pings and %s; want 1 ping and ~350ms", pings, took)
	}
	// A client that answers stays connected across many pings. Its pongs
	// get a roomier deadline, so a busy machine does not fail the test.
	e = start(t, func(c *Config) { c.PingInterval, c.PingTimeout = 200*time.Millisecond, 3*time.Second })
	c := dial(t, e, token(t, "alice", "Alice", time.Hour))
	time.Sleep(time.Second)
	if r := ack(t, c, schemas.EventJoinRoom, map[string]string{"roomId": "r"}); !r.OK {
		t.Errorf("answering client was dropped: %+v", r)
	}
}

// TestRecoveryFieldsChecked: the pid and offset the server hands out pass
// the CONNECT checks (the socket is recovered with them); malformed ones
// are refused with a connect_error naming the field.
func TestRecoveryFieldsChecked(t *testing.T) {
	e := start(t, nil)
	tok := token(t, "alice", "Alice", time.Hour)
	c, err := sioclient.Dial(context.Background(), e.base, &sioclient.Options{Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := c.Wait(waitCtx(t), schemas.EventAuthSuccessful)
	if err != nil {
		t.Fatal(err)
	}
	sid, pid := c.SID, c.PID
	c.Drop()
	// Reconnect once the connector holds the dropped socket (a recovery
	// racing with noticing the drop is another matter).
	e.awaitHeld(t, sid)
	time.Sleep(50 * time.Millisecond)
	r, err := sioclient.Dial(context.Background(), e.base, &sioclient.Options{Token: tok, PID: pid, Offset: ev.Offset})
	if err != nil {
		t.Fatalf("recovery with pid %q offset %q: %v", pid, ev.Offset, err)
	}
	t.Cleanup(func() { _ = r.Close() })
	if !r.Recovered || r.SID != sid {
		t.Errorf("not recovered with the server's pid %q and offset %q: recovered=%v sid %s (was %s)", pid, ev.Offset, r.Recovered, r.SID, sid)
	}

	for _, tc := range []struct{ pid, offset, field string }{
		{"x{1}", "", "auth.pid"},
		{pid, "1-2-3", "auth.offset"},
	} {
		_, err := sioclient.Dial(context.Background(), e.base, &sioclient.Options{Token: tok, PID: tc.pid, Offset: tc.offset})
		ce, ok := sioclient.IsConnectError(err)
		if !ok || !strings.Contains(ce.Message, tc.field) || !strings.Contains(string(ce.Data), string(schemas.CodeInvalidPayload)) {
			t.Errorf("pid %q offset %q: %v, want a connect_error about %s", tc.pid, tc.offset, err, tc.field)
		}
	}
}

// TestConnectWithJWKS: a connector configured with a JWKS URL (and no
// testSecret) authenticates a client whose token an Ed25519 key of the set
// signed, and refuses one signed with the HS256 secret other tests use.
func TestConnectWithJWKS(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "k1"}})
	if err != nil {
		t.Fatal(err)
	}
	set, _ := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
	keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(set) }))
	defer keys.Close()
	e := start(t, func(cc *Config) { cc.JWTSecret, cc.JWKSURL, cc.JWTIssuer = "", keys.URL, "auth.example" })

	sk := auth.SigningKey{Method: jwt.SigningMethodEdDSA, Key: priv, KID: "k1"}
	tok, err := auth.SignToken(sk, auth.TokenClaims{UserID: "alice", UserName: "Alice", Issuer: "auth.example", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, e, tok)
	if _, err := c.Wait(waitCtx(t), schemas.EventAuthSuccessful); err != nil {
		t.Fatalf("EdDSA token from the JWKS: %v", err)
	}
	_, err = sioclient.Dial(context.Background(), e.base, &sioclient.Options{Token: token(t, "alice", "Alice", time.Hour)})
	if ce, ok := sioclient.IsConnectError(err); !ok || !strings.Contains(ce.Message, "HS256 not accepted") {
		t.Errorf("HS256 token on a JWKS connector: %v", err)
	}
}
