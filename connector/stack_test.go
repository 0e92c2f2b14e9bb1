package connector

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/roomstream/roomstream/schemas"
)

// TestReadLoopKeepsItsStack: the frequent event (a plain progress report)
// is handled on the read loop's goroutine without growing its stack, and
// what is deep (CONNECT, joins, other room events, refusals) runs off it:
// an idle connection keeps the small stack its read loop started with.
// A read loop that grew would keep at least 4 KiB more for as long as its
// connection lasts (Go does not shrink the stack of a goroutine waiting
// in coder/websocket's read), which is what this test would see.
func TestReadLoopKeepsItsStack(t *testing.T) {
	l := startConnector(t, func(c *Config) {
		c.RateLimit, c.RateBurst = 1e6, 1<<20
		c.ConnectRate, c.MaxConnsPerIP, c.MaxConnsPerUser, c.MaxRoomsPerUser = 0, 0, 0, 0
	})
	s := l.srv
	// n sockets are measured; warm ones first run everything the
	// measured ones will, so that what that leaves behind (goroutines
	// kept for reuse, with their stacks) is there before the first
	// measure.
	const n, warm = 300, 300
	conns := make([]*websocket.Conn, n+warm)
	for i := range conns {
		conns[i], _ = l.dialWS(t, "user-"+strconv.Itoa(i))
	}
	measured, warming := conns[:n], conns[n:]
	var to []*websocket.Conn
	send := func(frame string) {
		t.Helper()
		for _, c := range to {
			if err := c.Write(context.Background(), websocket.MessageText, []byte(frame)); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor := func(what string, event, result string, want float64) {
		t.Helper()
		m := s.m.eventsIn.WithLabelValues(event, result)
		for deadline := time.Now().Add(20 * time.Second); testutil.ToFloat64(m) < want; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v of %v", what, testutil.ToFloat64(m), want)
			}
		}
		time.Sleep(100 * time.Millisecond) // the goroutines that handled them end
	}
	sent := 0.0 // events of each kind sent so far
	deep := func(room string) {
		t.Helper()
		send(`42["join-room",{"roomId":"` + room + `"}]`)
		send(`42["lock-room",{"roomId":"` + room + `"}]`)
		send(`42["no-such-event",{}]`)
		sent += float64(len(to))
		waitFor("joins", schemas.EventJoinRoom, "accepted", sent)
		waitFor("locks", schemas.EventLockRoom, "accepted", sent)
		waitFor("refusals", "other", string(schemas.CodeUnknownEvent), sent)
	}
	reports := 0.0
	frequent := func() {
		t.Helper()
		for i := range 3 {
			send(fmt.Sprintf(`42["file-upload-progress",{"fileId":"f1","uploadId":"u1","fileName":"a.bin","roomId":"r1","bytesUploaded":%d,"totalBytes":1000,"percentage":12.5}]`, i))
		}
		reports += 3 * float64(len(to))
		waitFor("progress reports", schemas.EventFileUploadProgress, "accepted", reports)
	}
	stack := func() float64 {
		for range 4 {
			runtime.GC()
		}
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return float64(m.StackInuse)
	}
	to = warming
	deep("r1")
	frequent()
	to = measured
	before := stack()
	frequent()
	afterFrequent := stack()
	deep("r1")
	afterDeep := stack()
	if grew := (afterFrequent - before) / n; grew > 2048 {
		t.Errorf("progress reports grew the stacks by %.0f B per connection", grew)
	}
	if grew := (afterDeep - afterFrequent) / n; grew > 2048 {
		t.Errorf("joins, other events and refusals grew the stacks by %.0f B per connection", grew)
	}
	t.Logf("stacks per measured connection: after progress reports %+.0f B, after joins, locks and refusals %+.0f B",
		(afterFrequent-before)/n, (afterDeep-afterFrequent)/n)
}
