package connector

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomstream/roomstream/connector/auth"
	"github.com/roomstream/roomstream/connector/protocol"
	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// redislessServer is a connector without Redis (its streams client is
// nil): whatever reaches Redis panics.
func redislessServer(v *auth.Verifier) *Server {
	s := &Server{cfg: Config{SendQueue: 64, RateLimit: 1, RateBurst: 1, AuthTimeout: time.Minute},
		m: newMetrics(prometheus.NewRegistry()), log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		verifier: v, sockets: map[string]*socket{}, held: map[string]*held{}, recoveries: map[string]*recovery{}}
	zero := "0-0"
	s.lastSeen.Store(&zero)
	return s
}

// connectOnce hands one CONNECT with data to a fresh socket of s and
// returns the frames queued for it (none are written: no writer runs).
func connectOnce(s *Server, data []byte) (*socket, [][]byte) {
	so := newSocket(s, nil)
	so.writing = true
	so.connectTimer = time.NewTimer(time.Hour)
	defer so.connectTimer.Stop()
	so.handleConnect(protocol.Packet{Type: protocol.Connect, Namespace: "/", Data: data})
	so.qmu.Lock()
	defer so.qmu.Unlock()
	return so, so.queue
}

// connectErrorCode returns the err.data.code of a CONNECT_ERROR frame.
func connectErrorCode(t *testing.T, frames [][]byte) schemas.Code {
	t.Helper()
	if len(frames) != 1 || !bytes.HasPrefix(frames[0], []byte("44{")) {
		t.Fatalf("want one CONNECT_ERROR frame, got %q", frames)
	}
	var body struct {
		Message string
		Data    struct{ Code schemas.Code }
	}
	if err := json.Unmarshal(frames[0][2:], &body); err != nil || body.Message == "" {
		t.Fatalf("CONNECT_ERROR %q: %v", frames[0], err)
	}
	return body.Data.Code
}

const (
	goodPID    = "AAECAwQFBgcICQoLDA0ODw" // newID's shape: 16 bytes, URL-safe base64
	goodOffset = "1795940470000-3"
)

func TestValidRecoveryFields(t *testing.T) {
	for range 100 {
		if id := newID(); !validRecoveryID(id) {
			t.Fatalf("newID() %q is not a valid recovery id", id)
		}
	}
	for _, pid := range []string{"", "short", goodPID + "A", goodPID[:21] + "{", goodPID[:21] + "=", goodPID[:21] + "/", strings.Repeat("é", 11)} {
		if validRecoveryID(pid) {
			t.Errorf("recovery id %q accepted", pid)
		}
	}
	for _, off := range []string{goodOffset, "0-0", "18446744073709551615-18446744073709551615"} {
		if !validOffset(off) {
			t.Errorf("offset %q refused", off)
		}
	}
	for _, off := range []string{"", "5", "-", "1-", "-1", "+1-0", "1-+0", "1 -0", "18446744073709551616-0", "1-0-0", "0x1-0", "1-0\n", strings.Repeat("1", 30) + "-0"} {
		if validOffset(off) {
			t.Errorf("offset %q accepted", off)
		}
	}
}

// TestMalformedRecoveryRefusedBeforeRedis: a malformed pid or offset gets
// a CONNECT_ERROR naming the field, and nothing reaches Redis (this
// server has none: a lookup would panic).
func TestMalformedRecoveryRefusedBeforeRedis(t *testing.T) {
	s := redislessServer(auth.NewVerifier(testSecret, "", "", 0))
	tests := []struct {
		auth string
		code schemas.Code
		want string
	}{
		{`{"pid":"x{y}"}`, schemas.CodeInvalidPayload, "auth.pid"},
		{`{"pid":"` + strings.Repeat("A", 5000) + `"}`, schemas.CodeInvalidPayload, "auth.pid"},
		{`{"pid":12}`, schemas.CodeInvalidPayload, "auth.pid"},
		{`{"pid":"` + goodPID + `","offset":"1-0-0"}`, schemas.CodeInvalidPayload, "auth.offset"},
		{`{"pid":"` + goodPID + `","offset":1}`, schemas.CodeInvalidPayload, "auth.offset"},
		{`{"token":5}`, schemas.CodeInvalidToken, "auth.token"},
		{`{"token":"a.b.c","pid":"` + goodPID + `"}`, schemas.CodeInvalidToken, "malformed"},
		{`{"token":"` + strings.Repeat("a", auth.MaxTokenLen+1) + `"}`, schemas.CodeInvalidToken, "longer"},
	}
	for _, tt := range tests {
		so, frames := connectOnce(s, []byte(tt.auth))
		if code := connectErrorCode(t, frames); code != tt.code || !strings.Contains(string(frames[0]), tt.want) {
			t.Errorf("%.60s: %s %q, want %s mentioning %q", tt.auth, code, frames[0], tt.code, tt.want)
		}
		if so.connected || so.authed {
			t.Errorf("%.60s: socket connected", tt.auth)
		}
	}
	// recover checks again on its own.
	for _, auth := range []connectAuth{{PID: "x{y}"}, {PID: goodPID, Offset: "1-x"}} {
		if s.recover(newSocket(s, nil), auth) {
			t.Errorf("recovered %+v", auth)
		}
	}
}

// FuzzConnectAuth feeds arbitrary auth objects to the CONNECT handling:
// parseConnectAuth never panics, what it accepts has well-formed recovery
// fields, and what it refuses is answered with a CONNECT_ERROR before
// anything reaches Redis.
func FuzzConnectAuth(f *testing.F) {
	tok, err := auth.Sign(testSecret, "alice", "Alice", time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `"x"`, `1`, `{"token":null}`,
		`{"token":"` + tok + `"}`,
		`{"token":"` + tok + `","pid":"` + goodPID + `","offset":"` + goodOffset + `"}`,
		`{"pid":"` + goodPID + `"}`,
		`{"pid":"` + goodPID + `","offset":null}`,
		`{"pid":"` + goodPID + `","offset":"0-0"}`,
		`{"pid":"short","offset":"` + goodOffset + `"}`,
		`{"pid":"` + goodPID + `","offset":"99999999999999999999-0"}`,
		`{"pid":"` + goodPID + `","offset":"-1"}`,
		`{"pid":{"$gt":""}}`,
		`{"token":["a"]}`,
		`{"token":"a","token":1}`,
		`{"Token":"x","PID":"y"}`,
		`{"pid":"AAECAwQFBgcICQoLDA0OD\u0077"}`,
	} {
		f.Add([]byte(s))
	}
	s := redislessServer(auth.NewVerifier(testSecret, "", "", 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		auth, aerr := parseConnectAuth(data)
		if aerr == nil {
			if auth.PID != "" && !validRecoveryID(auth.PID) {
				t.Fatalf("malformed pid accepted: %q", auth.PID)
			}
			if auth.Offset != "" {
				if _, err := streams.ParseID(auth.Offset); err != nil || !validOffset(auth.Offset) {
					t.Fatalf("malformed offset accepted: %q", auth.Offset)
				}
			}
			return
		}
		if !aerr.Code.Known() || aerr.Message == "" {
			t.Fatalf("refusal without a known code and a reason: %+v", aerr)
		}
		so, frames := connectOnce(s, data)
		if code := connectErrorCode(t, frames); code != aerr.Code {
			t.Fatalf("CONNECT_ERROR code %s, parse said %s", code, aerr.Code)
		}
		if so.connected || so.authed {
			t.Fatal("a refused CONNECT connected")
		}
	})
}
