package connector

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/kelseyhightower/envconfig"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/roomstream/roomstream/infra/testredis"
	"github.com/roomstream/roomstream/streams"
)

// benchAppend measures appending inbound events from 100 concurrent
// sockets to a real redis-server, each waiting for its event before the
// next: one XADD each (direct: no append loop runs, as in durable mode) or
// through the append loops that pipeline what is waiting (batched).
func benchAppend(b *testing.B, batched bool) {
	rs := testredis.Start(b, nil)
	var cfg Config
	if err := envconfig.Process("ROOMSTREAM_BENCH_DEFAULTS_ONLY", &cfg); err != nil {
		b.Fatal(err)
	}
	cfg.RedisURL, cfg.JWTSecret = rs.URL(), "bench-secret-0123456789"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rdb, err := cfg.Connect(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer rdb.Close()
	s := New(cfg, streams.New(rdb, cfg.Config), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if batched {
		runAppendLoops(b, ctx, s)
	}
	env := streams.Envelope{Type: "file-upload-progress", RoomID: "room-42", UserID: "alice", At: time.Now(),
		Data: []byte(`{"fileId":"f-12","uploadId":"u-12","fileName":"holiday.mov","roomId":"room-42","bytesUploaded":5242880,"totalBytes":104857600,"percentage":5}`)}
	b.SetParallelism(50)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		so := appendSocket(s)
		for pb.Next() {
			if err := appendVia(so, env, appendTimeout); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkAppendDirect(b *testing.B)  { benchAppend(b, false) }
func BenchmarkAppendBatched(b *testing.B) { benchAppend(b, true) }

// BenchmarkInbound measures the connector's inbound path per event: 50
// WebSocket clients on loopback send file-upload-progress events as fast
// as they are taken, and the connector reads, decodes, validates and
// appends each to a real redis-server (no worker: nothing comes back).
// The clients run in the same process, so allocs/op and cpu-ns/event (all
// the process's CPU time per event) include their share.
func BenchmarkInbound(b *testing.B) {
	l := startConnector(b, func(c *Config) { c.RateLimit, c.RateBurst = 1e9, 1<<30 })
	s := l.srv
	const clients = 50
	conns := make([]*websocket.Conn, clients)
	for i := range clients {
		conns[i], _ = l.dialWS(b, "user-"+strconv.Itoa(i))
		go func() { // answers nothing; reads until the connection ends
			for {
				if _, _, err := conns[i].Read(context.Background()); err != nil {
					return
				}
			}
		}()
	}
	frame := []byte(`42["file-upload-progress",{"fileId":"f-12","uploadId":"u-12","fileName":"holiday.mov","roomId":"room-42","bytesUploaded":5242880,"totalBytes":104857600,"percentage":5,"seq":17,"sentAt":1767225600000000}]`)
	accepted := s.m.eventsIn.WithLabelValues("file-upload-progress", "accepted")
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	var sent atomic.Int64
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sent.Add(1) <= int64(b.N) {
				if err := conns[i].Write(context.Background(), websocket.MessageText, frame); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for testutil.ToFloat64(accepted) < float64(b.N) {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	if cpu := processCPU() - cpu0; cpu0 > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/event")
	}
}
