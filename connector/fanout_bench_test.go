package connector

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/kelseyhightower/envconfig"
	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/infra/testredis"
	"github.com/roomstream/roomstream/streams"
)

// BenchmarkFanout10 measures the connector's fan-out of one outbound entry
// (a relayed file-upload-progress) to the ten sockets of a room: decoding
// the entry, building the frame, queueing it to each socket and writing it
// to ten real WebSocket connections on loopback, whose clients read it.
func BenchmarkFanout10(b *testing.B) {
	rs := testredis.Start(b, nil)
	var cfg Config
	if err := envconfig.Process("ROOMSTREAM_BENCH_DEFAULTS_ONLY", &cfg); err != nil {
		b.Fatal(err)
	}
	cfg.RedisURL, cfg.JWTSecret, cfg.Partitions = rs.URL(), "bench-secret-0123456789", 4
	ctx, cancel := context.WithCancel(context.Background())
	rdb, err := cfg.Connect(ctx)
	if err != nil {
		b.Fatal(err)
	}
	s := New(cfg, streams.New(rdb, cfg.Config), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	hs := httptest.NewServer(s.Handler())
	b.Cleanup(func() { cancel(); <-done; hs.Close(); _ = rdb.Close() })
	for !s.Ready() {
		time.Sleep(5 * time.Millisecond)
	}

	const members = 10
	var got [members]atomic.Int64
	sids := make([]string, members)
	for i := range members {
		tok, _ := Sign(cfg.JWTSecret, "user-"+strconv.Itoa(i), "User", time.Hour)
		c, _, err := websocket.Dial(ctx, "ws"+hs.URL[4:]+"/socket.io/?EIO=4&transport=websocket", nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.CloseNow() })
		if _, _, err := c.Read(ctx); err != nil { // open packet
			b.Fatal(err)
		}
		if err := c.Write(ctx, websocket.MessageText, []byte(`40{"token":"`+tok+`"}`)); err != nil {
			b.Fatal(err)
		}
		for sids[i] == "" {
			_, f, err := c.Read(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if v, ok := bytes.CutPrefix(f, []byte(`40{"sid":"`)); ok {
				sids[i] = string(v[:bytes.IndexByte(v, '"')])
			}
		}
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
	values := map[string]any{}
	v := o.Values()
	for i := 0; i+1 < len(v); i += 2 {
		if b, ok := v[i+1].([]byte); ok {
			v[i+1] = string(b) // as Redis returns it
		}
		values[v[i].(string)] = v[i+1]
	}
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
