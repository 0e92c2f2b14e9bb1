package connector

import (
	"bytes"
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/streams"
)

// BenchmarkFanout10 measures the connector's fan-out of one outbound entry
// (a relayed file-upload-progress) to the ten sockets of a room: decoding
// the entry, building the frame, queueing it to each socket and writing it
// to ten real WebSocket connections on loopback, whose clients read it.
func BenchmarkFanout10(b *testing.B) {
	l := startConnector(b, nil)
	s := l.srv

	const members = 10
	var got [members]atomic.Int64
	sids := make([]string, members)
	for i := range members {
		var c *websocket.Conn
		c, sids[i] = l.dialWS(b, "user-"+strconv.Itoa(i))
		go func() {
			for {
				_, f, err := c.Read(context.Background())
				if err != nil {
					return
				}
				if bytes.HasPrefix(f, []byte(`42["file-upload-progress"`)) {
					got[i].Add(1)
				}
			}
		}()
	}
	for _, sid := range sids {
		s.members.add("room-42", sid)
	}
	o := &streams.Outbound{Partition: 1, Room: "room-42", Messages: []streams.Message{{Event: "file-upload-progress", Room: "room-42",
		Body: []byte(`{"fileId":"f-12","uploadId":"u-12","fileName":"holiday.mov","roomId":"room-42","userId":"alice","bytesUploaded":5242880,"totalBytes":104857600,"percentage":5,"userName":"Alice","seq":17,"sentAt":1767225600000000}`)}}}
	values := asRead(o)
	d := newDedup()
	base := time.Now().UnixMilli()
	wait := func(n int64) {
		for i := range members {
			for got[i].Load() < n {
				time.Sleep(50 * time.Microsecond)
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		id := strconv.FormatInt(base, 10) + "-" + strconv.Itoa(i)
		values["src"] = id
		s.dispatch(redis.XMessage{ID: id, Values: values}, d, &id)
		if i%128 == 127 {
			wait(int64(i) - 256) // keep the send queues short of their limit
		}
	}
	wait(int64(b.N))
}
