package connector

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestSustainedFloodDisconnected: a client that keeps sending past its
// rate limit, while reading every answer (so that its send queue never
// fills: being slow is not what closes it), is refused `rate_limited`
// and, after ROOMSTREAM_MAX_REFUSALS refusals in a row, closed (1008).
func TestSustainedFloodDisconnected(t *testing.T) {
	const burst, maxRefusals = 2, 10
	e := start(t, func(c *Config) { c.RateLimit, c.RateBurst, c.MaxRefusals = 0.1, burst, maxRefusals })
	ws, _, err := websocket.Dial(waitCtx(t), strings.Replace(e.base, "http", "ws", 1)+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// next returns the next frame that is not a ping (answered).
	next := func() (string, error) {
		for {
			_, f, err := ws.Read(ctx)
			if err != nil {
				return "", err
			}
			if string(f) == "2" {
				_ = ws.Write(ctx, websocket.MessageText, []byte("3"))
				continue
			}
			return string(f), nil
		}
	}
	if _, err := next(); err != nil { // open
		t.Fatal(err)
	}
	_ = ws.Write(ctx, websocket.MessageText, []byte(`40{"token":"`+token(t, "flooder", "Flooder", time.Hour)+`"}`))
	for f, err := next(); !strings.HasPrefix(f, "40{"); f, err = next() {
		if err != nil {
			t.Fatalf("no CONNECT reply: %v", err)
		}
	}
	accepted, limited := 0, 0
	var closeErr error
flood:
	for id := 1; id <= 100; id++ {
		if err := ws.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `42%d["join-room",{"roomId":"r1"}]`, id)); err != nil {
			closeErr = err
			break
		}
		for {
			f, err := next()
			if err != nil {
				closeErr = err
				break flood
			}
			if !strings.HasPrefix(f, fmt.Sprintf("43%d[", id)) {
				continue // events of the room
			}
			switch {
			case strings.Contains(f, `"ok":true`):
				accepted++
			case strings.Contains(f, `"rate_limited"`):
				limited++
			default:
				t.Fatalf("event %d answered %s", id, f)
			}
			break
		}
	}
	if closeErr == nil {
		t.Fatalf("100 events past the rate limit: still open (%d accepted, %d refused)", accepted, limited)
	}
	if st := websocket.CloseStatus(closeErr); st != websocket.StatusPolicyViolation {
		t.Errorf("closed with %v (%v), want 1008", st, closeErr)
	}
	if accepted != burst || limited != maxRefusals-1 && limited != maxRefusals {
		t.Errorf("closed after %d accepted and %d refused events, want %d and %d (MAX_REFUSALS)", accepted, limited, burst, maxRefusals)
	}
	t.Logf("closed after %d accepted and %d rate-limited events", accepted, limited)
}
