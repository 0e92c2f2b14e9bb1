package connector

import (
	"bytes"
	"context"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/streams"
)

// progressBody is a relayed file-upload-progress as the workers write it.
var progressBody = []byte(`{"fileId":"f-12","uploadId":"u-12","fileName":"holiday.mov","roomId":"room-42","userId":"alice","bytesUploaded":5242880,"totalBytes":104857600,"percentage":5,"userName":"Alice","seq":17,"sentAt":1767225600000000}`)

// fanoutRig is a connector with the sockets of one room, each read by a
// client that counts the room events it gets.
type fanoutRig struct {
	s    *Server
	sids []string
	got  []atomic.Int64 // frames received, per client
	d    *dedup
	bt   *batch
	// cpu is the CPU time the dispatching thread spent in dispatch.
	cpu time.Duration
}

func newFanoutRig(b *testing.B, members int) *fanoutRig {
	l := startConnector(b, nil)
	r := &fanoutRig{s: l.srv, sids: make([]string, members), got: make([]atomic.Int64, members), d: newDedup(), bt: newBatch()}
	for i := range members {
		var c *websocket.Conn
		c, r.sids[i] = l.dialWS(b, "user-"+strconv.Itoa(i))
		go func() {
			for {
				_, f, err := c.Read(context.Background())
				if err != nil {
					return
				}
				if bytes.HasPrefix(f, []byte(`42["file-upload-progress"`)) {
					r.got[i].Add(1)
				}
			}
		}()
	}
	for _, sid := range r.sids {
		r.s.members.add("room-42", sid)
	}
	return r
}

// dispatch delivers one outbound read, counting the CPU time it takes
// (the caller's goroutine is locked to its thread: see start).
func (r *fanoutRig) dispatch(msgs []redis.XMessage) {
	t0 := threadCPU()
	r.s.dispatch(msgs, r.d, r.bt)
	r.cpu += threadCPU() - t0
}

// start locks the benchmark's goroutine to its thread, whose CPU time
// dispatch counts, and starts the timer; the caller defers the unlock.
func (r *fanoutRig) start(b *testing.B) {
	runtime.LockOSThread()
	b.ReportAllocs()
	b.ResetTimer()
}

// wait waits until every client got at least n frames.
func (r *fanoutRig) wait(n int64) {
	for i := range r.got {
		for r.got[i].Load() < n {
			time.Sleep(50 * time.Microsecond)
		}
	}
}

// BenchmarkFanout10 measures the connector's fan-out of one outbound entry
// (a relayed file-upload-progress) to the ten sockets of a room: decoding
// the entry, building the frame, queueing it to each socket and writing it
// to ten real WebSocket connections on loopback, whose clients read it.
func BenchmarkFanout10(b *testing.B) {
	r := newFanoutRig(b, 10)
	o := &streams.Outbound{Partition: 1, Room: "room-42", Messages: []streams.Message{{Event: "file-upload-progress", Room: "room-42", Body: progressBody}}}
	values := asRead(o)
	base := time.Now().UnixMilli()
	r.start(b)
	defer runtime.UnlockOSThread()
	for i := range b.N {
		id := strconv.FormatInt(base, 10) + "-" + strconv.Itoa(i)
		values["src"] = id
		r.dispatch([]redis.XMessage{{ID: id, Values: values}})
		if i%128 == 127 {
			r.wait(int64(i) - 256) // keep the send queues short of their limit
		}
	}
	r.wait(int64(b.N))
	b.StopTimer()
	reportCPU(b, r.cpu, float64(b.N)*10)
}

// reportCPU reports the CPU time the dispatching thread spent per
// delivery: the connector's cost, without its clients' or other
// processes'.
func reportCPU(b *testing.B, cpu time.Duration, deliveries float64) {
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/deliveries, "cpu-ns/delivery")
	}
}

// BenchmarkFanoutBatch measures one outbound read batch of 8 entries, as
// the workers write them under load, delivered to a room of ten: each
// entry is a member's file-upload-progress for the room and its
// acknowledgement to the sender (88 deliveries per batch; ns/delivery
// and the dispatching thread's cpu-ns/delivery reported).
func BenchmarkFanoutBatch(b *testing.B) {
	const members, entries = 10, 8
	r := newFanoutRig(b, members)
	base := time.Now().UnixMilli()
	batch := make([]redis.XMessage, entries)
	vals := make([]map[string]any, entries)
	for j := range entries {
		o := &streams.Outbound{Partition: 1, Room: "room-42", Messages: []streams.Message{
			{AckID: int64(j), Body: []byte(`{"ok":true}`), To: []string{r.sids[j%members]}},
			{Event: "file-upload-progress", Room: "room-42", Body: progressBody},
		}}
		vals[j] = asRead(o)
	}
	r.start(b)
	defer runtime.UnlockOSThread()
	for i := range b.N {
		for j := range batch {
			id := strconv.FormatInt(base, 10) + "-" + strconv.Itoa(i*entries+j)
			vals[j]["src"] = id
			batch[j] = redis.XMessage{ID: id, Values: vals[j]}
		}
		r.dispatch(batch)
		if i%16 == 15 {
			r.wait(int64(i-32) * entries) // keep the send queues short of their limit
		}
	}
	r.wait(int64(b.N) * entries)
	b.StopTimer()
	deliveries := float64(b.N) * entries * (members + 1)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/deliveries, "ns/delivery")
	reportCPU(b, r.cpu, deliveries)
}
