package connector

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/roomstream/roomstream/schemas"
)

// closedAfter reads ws, answering the server's pings (so that the ping
// timeout is not what closes it), and returns how long after began the
// server closed it and with which status.
func closedAfter(t *testing.T, ws *websocket.Conn, began time.Time, limit time.Duration) (time.Duration, websocket.StatusCode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		_, msg, err := ws.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("still open after %s", limit)
			}
			return time.Since(began), websocket.CloseStatus(err)
		}
		if string(msg) == "2" {
			_ = ws.Write(ctx, websocket.MessageText, []byte("3"))
		}
	}
}

// timeoutsEnv is a connector whose CONNECT and authenticate timeouts are
// 1 s, far shorter than its ping timeout, so only they can close a
// client that answers pings.
func timeoutsEnv(t *testing.T) *harness {
	return start(t, func(c *Config) {
		c.ConnectTimeout, c.AuthTimeout = time.Second, time.Second
		c.PingInterval, c.PingTimeout = 200*time.Millisecond, 5*time.Second
	})
}

func openWS(t *testing.T, e *harness) (*websocket.Conn, time.Time) {
	t.Helper()
	ws, _, err := websocket.Dial(waitCtx(t), strings.Replace(e.base, "http", "ws", 1)+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	began := time.Now()
	if _, open, err := ws.Read(waitCtx(t)); err != nil || open[0] != '0' {
		t.Fatalf("open packet %q: %v", open, err)
	}
	return ws, began
}

// TestConnectTimeout: a client that opens the Engine.IO session and
// answers every ping but never sends its Socket.IO CONNECT is closed
// (1008) after ROOMSTREAM_CONNECT_TIMEOUT.
func TestConnectTimeout(t *testing.T) {
	e := timeoutsEnv(t)
	ws, began := openWS(t, e)
	took, status := closedAfter(t, ws, began, 5*time.Second)
	if status != websocket.StatusPolicyViolation || took < 900*time.Millisecond {
		t.Errorf("closed after %s with %v; want 1008 after the 1s CONNECT timeout", took, status)
	}
	t.Logf("closed after %s (CONNECT timeout 1s)", took)
}

// TestAuthenticateTimeout: a client that connects without a token and
// answers every ping but never sends `authenticate` is closed (1008) after
// ROOMSTREAM_AUTH_TIMEOUT; one that authenticates in time stays.
func TestAuthenticateTimeout(t *testing.T) {
	e := timeoutsEnv(t)
	ws, _ := openWS(t, e)
	if err := ws.Write(waitCtx(t), websocket.MessageText, []byte("40")); err != nil {
		t.Fatal(err)
	}
	for {
		_, f, err := ws.Read(waitCtx(t))
		if err != nil {
			t.Fatalf("no CONNECT reply: %v", err)
		}
		if strings.HasPrefix(string(f), "40{") {
			break
		}
	}
	connected := time.Now()
	took, status := closedAfter(t, ws, connected, 5*time.Second)
	if status != websocket.StatusPolicyViolation || took < 900*time.Millisecond {
		t.Errorf("closed after %s with %v; want 1008 after the 1s authenticate timeout", took, status)
	}
	t.Logf("closed after %s (authenticate timeout 1s)", took)

	// Authenticated in time: still there after twice the timeout.
	c := dial(t, e, "")
	if a := ack(t, c, schemas.EventAuthenticate, map[string]string{"token": token(t, "bob", "Bob", time.Hour)}); !a.OK {
		t.Fatalf("authenticate: %+v", a)
	}
	time.Sleep(2 * time.Second)
	if a := ack(t, c, schemas.EventJoinRoom, map[string]string{"roomId": "r1"}); !a.OK {
		t.Errorf("authenticated socket after twice the authenticate timeout: %+v", a)
	}
}
