package connector

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/roomstream/roomstream/infra/testredis"
	"github.com/roomstream/roomstream/streams"
)

// benchAppend measures appending inbound events from 100 concurrent
// sockets to a real redis-server, one XADD each (direct) or through the
// append loops that pipeline what is waiting (batched).
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
		for range appenders {
			go s.appendLoop(ctx)
		}
		s.appending.Store(true)
	}
	env := &streams.Envelope{Type: "file-upload-progress", RoomID: "room-42", UserID: "alice", At: time.Now(),
		Data: []byte(`{"fileId":"f-12","uploadId":"u-12","fileName":"holiday.mov","roomId":"room-42","bytesUploaded":5242880,"totalBytes":104857600,"percentage":5}`)}
	b.SetParallelism(50)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.appendEvent(ctx, env); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkAppendDirect(b *testing.B)  { benchAppend(b, false) }
func BenchmarkAppendBatched(b *testing.B) { benchAppend(b, true) }
