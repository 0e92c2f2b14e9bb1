package connector

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// TestAppendOrderWhileRedisAway: a socket sends events faster than Redis
// takes them (Redis is away): its read loop queues them without waiting
// for each, at most socketAppends of them (it stops reading the rest:
// TCP holds them), and the first is tried again and again while the
// others wait behind it. Once Redis is back every event is appended, in
// the order sent: never a later one before an earlier one, which the
// workers would drop as a duplicate (its seq is below one applied).
func TestAppendOrderWhileRedisAway(t *testing.T) {
	l := startConnector(t, func(c *Config) { c.RateLimit, c.RateBurst = 1e6, 1<<20 })
	s := l.srv
	ws, sid := l.dialWS(t, "alice")
	go func() { // reads (and drops) what the socket gets until it closes
		for {
			if _, _, err := ws.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	so := s.socket(sid)
	accepted := s.m.eventsIn.WithLabelValues(schemas.EventFileUploadProgress, "accepted")
	l.redis.Kill()
	const events = 200
	go func() {
		for i := 1; i <= events; i++ {
			frame := fmt.Sprintf(`42["file-upload-progress",{"fileId":"f1","uploadId":"u1","fileName":"a.bin","roomId":"r1","bytesUploaded":%d,"totalBytes":1000,"percentage":1}]`, i)
			if ws.Write(context.Background(), websocket.MessageText, []byte(frame)) != nil {
				return
			}
		}
	}()
	queued := 0
	for until := time.Now().Add(time.Second); time.Now().Before(until); time.Sleep(time.Millisecond) {
		so.amu.Lock()
		queued = max(queued, len(so.appendq))
		so.amu.Unlock()
	}
	if queued != socketAppends {
		t.Errorf("at most %d events queued while Redis was away, want %d (the bound, reached: the read loop does not wait for each append)", queued, socketAppends)
	}
	l.redis.Start()
	for deadline := time.Now().Add(30 * time.Second); testutil.ToFloat64(accepted) < events; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%v of %d events accepted 30 s after Redis came back", testutil.ToFloat64(accepted), events)
		}
	}
	msgs, err := s.c.Redis().XRange(context.Background(), s.c.Keys.Inbound(streams.Partition("r1", s.c.Partitions())), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	next := uint64(1) // the next seq not yet seen
	for _, m := range msgs {
		env, err := streams.DecodeEnvelope(m.ID, m.Values)
		if err != nil || env.SocketID != sid {
			continue
		}
		switch {
		case env.Seq == next:
			next++
		case env.Seq > next:
			t.Fatalf("event %d appended before event %d", env.Seq, next)
		}
		// Below next: appended again (a lost reply), harmless.
	}
	if next != events+1 {
		t.Errorf("events 1 to %d appended in order, want 1 to %d", next-1, events)
	}
}

// TestJoinLeaveKeepRooms: joins and leaves sent back to back, between
// other events, leave the socket's rooms (those recorded in Redis, which
// whoever removes the socket from its rooms reads) as the last of them
// says: a join or leave waits for the socket's earlier events and for its
// own append before the next is read, so the rooms follow what was
// appended, in order.
func TestJoinLeaveKeepRooms(t *testing.T) {
	l := startConnector(t, func(c *Config) { c.RateLimit, c.RateBurst = 1e6, 1<<20 })
	s := l.srv
	ws, sid := l.dialWS(t, "alice")
	ctx := waitCtx(t)
	go func() { // reads (and drops) what the socket gets until it closes
		for {
			if _, _, err := ws.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	send := func(frame string) {
		t.Helper()
		if err := ws.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
			t.Fatal(err)
		}
	}
	progress := `42["file-upload-progress",{"fileId":"f1","uploadId":"u1","fileName":"a.bin","roomId":"r1","bytesUploaded":1,"totalBytes":1000,"percentage":1}]`
	send(`42["join-room",{"roomId":"r1"}]`)
	for range 10 {
		send(progress)
		send(`42["leave-room",{"roomId":"r1"}]`)
		send(progress)
		send(`42["join-room",{"roomId":"r1"}]`)
	}
	send(`42["join-room",{"roomId":"r2"}]`)
	send(`42["leave-room",{"roomId":"r2"}]`)
	send(`42["join-room",{"roomId":"r3"}]`)
	joins := s.m.eventsIn.WithLabelValues(schemas.EventJoinRoom, "accepted")
	for deadline := time.Now().Add(10 * time.Second); testutil.ToFloat64(joins) < 13; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%v of 13 joins accepted", testutil.ToFloat64(joins))
		}
	}
	rooms, err := s.c.SocketRooms(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(rooms)
	if want := []string{"r1", "r3"}; !slices.Equal(rooms, want) {
		t.Errorf("the socket's rooms in Redis: %v, want %v", rooms, want)
	}
}
