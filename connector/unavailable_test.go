package connector

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/roomstream/roomstream/schemas"
)

// appendWindow is how long the connector keeps appending an event while
// Redis is away (connector/events.go; not configurable).
const appendWindow = 5 * time.Second

// TestUnavailableWhenRedisAwayTooLong: Redis is gone for longer than the
// append window. An event sent meanwhile is answered `unavailable` once the
// window has passed (not at once, and never left unanswered), with an ack
// when the client asked for one and an `error` event when it did not.
func TestUnavailableWhenRedisAwayTooLong(t *testing.T) {
	e := start(t, nil)
	a := dial(t, e, token(t, "alice", "Alice", time.Hour))
	if r := ack(t, a, schemas.EventJoinRoom, map[string]string{"roomId": "r1"}); !r.OK {
		t.Fatalf("join: %+v", r)
	}
	e.redis.Kill() // and never started again

	// With an ack: the ack says unavailable.
	ctx, cancel := context.WithTimeout(context.Background(), 3*appendWindow)
	defer cancel()
	sent := time.Now()
	raw, err := a.EmitAck(ctx, schemas.EventLockRoom, map[string]string{"roomId": "r1"})
	took := time.Since(sent)
	if err != nil {
		t.Fatalf("lock sent with Redis away: no answer within %s: %v", 3*appendWindow, err)
	}
	var r schemas.Ack
	if err := json.Unmarshal(raw, &r); err != nil || r.OK || r.Error == nil || r.Error.Code != schemas.CodeUnavailable {
		t.Fatalf("lock sent with Redis away: ack %s, want unavailable", raw)
	}
	if took < appendWindow-500*time.Millisecond {
		t.Errorf("unavailable after %s: the connector gave up before its %s append window", took, appendWindow)
	}
	t.Logf("ack unavailable after %s", took)

	// Without an ack: an error event naming the event and the room.
	if err := a.Emit(ctx, schemas.EventUnlockRoom, map[string]string{"roomId": "r1"}); err != nil {
		t.Fatal(err)
	}
	ev, err := a.Wait(ctx, schemas.EventError)
	if err != nil {
		t.Fatalf("unlock sent with Redis away: no error event: %v", err)
	}
	var se schemas.Error
	if ev.Decode(&se); se.Code != schemas.CodeUnavailable || se.Event != schemas.EventUnlockRoom || se.RoomID != "r1" {
		t.Errorf("error event %+v, want unavailable for unlock-room in r1", se)
	}
	e.redis.Start() // the connector and worker then stop at once, not after their Redis retries
}
