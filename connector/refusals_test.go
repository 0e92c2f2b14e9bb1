package connector

import (
	"testing"
	"time"

	"github.com/roomstream/roomstream/schemas"
)

// TestRefusalsInARowDisconnect: a socket refused MAX_REFUSALS times in a
// row is disconnected; an accepted event in between starts the count
// again, so a client that errs now and then stays.
func TestRefusalsInARowDisconnect(t *testing.T) {
	const limit = 5
	e := start(t, func(c *Config) { c.MaxRefusals = limit; c.RateLimit, c.RateBurst = 1000, 1000 })
	c := dial(t, e, token(t, "alice", "Alice", time.Hour))
	refuse := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if r := ack(t, c, "no-such-event", map[string]string{}); r.OK || r.Error.Code != schemas.CodeUnknownEvent {
				t.Fatalf("unknown event: %+v, want unknown_event", r)
			}
		}
	}
	refuse(limit - 1)
	if r := ack(t, c, schemas.EventJoinRoom, map[string]string{"roomId": "r1"}); !r.OK {
		t.Fatalf("join: %+v", r)
	}
	refuse(limit - 1)
	select {
	case <-c.Done():
		t.Fatalf("disconnected after %d refusals in a row with an accepted event before them (limit %d)", limit-1, limit)
	case <-time.After(200 * time.Millisecond):
	}
	_ = c.EmitRaw(waitCtx(t), []byte(`42["no-such-event",{}]`))
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("still connected 5 s after %d refusals in a row", limit)
	}
}
