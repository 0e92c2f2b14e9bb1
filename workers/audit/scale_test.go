package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/infra/testredis"
	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
	"github.com/roomstream/roomstream/workers"
)

// TestLargeReplay measures replay on a big log. It runs only when
// ROOMSTREAM_REPLAY_SCALE gives the number of entries (e.g. 1000000):
//
//	ROOMSTREAM_REPLAY_SCALE=1000000 go test -run TestLargeReplay -v -timeout 60m ./workers/audit/
//
// It writes the log with the live state the workers' Applier makes of it,
// then times verify, timeline, export and import and prints entries/s and
// the peak Go heap of each, which must stay under maxReplayHeap. ROOMSTREAM_REPLAY_REDIS_URL runs it against a
// Redis of your own (which keeps the data, for measuring the real
// command); by default it starts a private one.
func TestLargeReplay(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("ROOMSTREAM_REPLAY_SCALE"))
	if n <= 0 {
		t.Skip("set ROOMSTREAM_REPLAY_SCALE=<entries> to run")
	}
	var rdb redis.UniversalClient
	if url := os.Getenv("ROOMSTREAM_REPLAY_REDIS_URL"); url != "" {
		cfg := streams.Config{RedisURL: url}
		var err error
		if rdb, err = cfg.Connect(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer rdb.Close()
	} else {
		rdb = testredis.Start(t, &testredis.Options{Args: []string{"--maxmemory", "0"}}).Client()
	}
	cfg := streams.Config{KeyPrefix: "", Partitions: 16, RecoveryWindow: 2 * time.Minute,
		InboundRetention: 7 * 24 * time.Hour, InboundMaxLen: int64(n)}
	ctx := context.Background()
	c := streams.New(rdb, cfg)
	if err := c.EnsureMeta(ctx); err != nil {
		t.Fatal(err)
	}
	rooms := max(n/50, 1)
	start := time.Now()
	if err := writeLog(ctx, c, n, rooms); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	t.Logf("wrote %d entries over %d rooms with their live state in %s (%.0f entries/s)", n, rooms, el.Round(time.Second), float64(n)/el.Seconds())

	r := New(rdb, cfg, &Options{Progress: os.Stderr})
	measure(t, "verify", n, func() error {
		sum, err := r.Verify(ctx, VerifyOptions{SettleRounds: -1}, nil)
		if err == nil && (sum.Differing != 0 || sum.Matching != rooms) {
			err = fmt.Errorf("verify: %+v", sum)
		}
		return err
	})
	measure(t, "timeline (every room, jsonl)", n, func() error {
		w := bufio.NewWriter(io.Discard)
		enc := json.NewEncoder(w)
		return r.Timeline(ctx, TimelineOptions{}, func(e Event) error { return enc.Encode(e) })
	})
	file := filepath.Join(t.TempDir(), "log.jsonl")
	measure(t, "export", n, func() error {
		f, err := os.Create(file)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = r.Export(ctx, ExportOptions{}, f)
		return err
	})
	if st, err := os.Stat(file); err == nil {
		t.Logf("export file: %d MiB", st.Size()>>20)
	}
	measure(t, "import", n, func() error {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err = r.Import(ctx, f, "imported:"); err != nil {
			return err
		}
		_, err = r.Clean(ctx, "imported:")
		return err
	})
}

// measure runs fn and logs its entries/s and the peak Go heap meanwhile.
func measure(t *testing.T, name string, n int, fn func() error) {
	t.Helper()
	runtime.GC()
	stop, peak := watchHeap()
	start := time.Now()
	err := fn()
	el := time.Since(start)
	heap, total := stop()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	msg := fmt.Sprintf("%s: %d entries in %s = %.0f entries/s; peak Go heap %.1f MiB, peak Go memory %.1f MiB (before: %.1f MiB)",
		name, n, el.Round(time.Millisecond), float64(n)/el.Seconds(), mib(heap), mib(total), mib(peak))
	t.Log(msg)
	fmt.Println("REPLAY-FIGURES " + msg)
	// Flat memory: what a command holds does not grow with the log;
	// something kept per entry or per room would pass this bound well
	// before a million entries.
	if heap > maxReplayHeap {
		t.Errorf("%s: peak Go heap %.1f MiB over %d entries, want under %.0f MiB whatever the log's size", name, mib(heap), n, mib(maxReplayHeap))
	}
}

// maxReplayHeap bounds the peak Go heap of each replay command on a large
// log: streaming keeps it flat.
const maxReplayHeap = 64 << 20

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// watchHeap samples the Go heap every 10ms until stop; it returns the
// heap in use at the start.
func watchHeap() (stop func() (heap, total uint64), before uint64) {
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/total:bytes"}}
	read := func() (uint64, uint64) {
		metrics.Read(samples)
		return samples[0].Value.Uint64(), samples[1].Value.Uint64()
	}
	before, _ = read()
	var mu sync.Mutex
	var ph, pt uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tk := time.NewTicker(10 * time.Millisecond)
		defer tk.Stop()
		for {
			h, tot := read()
			mu.Lock()
			ph, pt = max(ph, h), max(pt, tot)
			mu.Unlock()
			select {
			case <-done:
				return
			case <-tk.C:
			}
		}
	}()
	return func() (uint64, uint64) {
		close(done)
		<-finished
		return ph, pt
	}, before
}

// writeLog appends n entries over rooms rooms, interleaved in time, and
// applies each with the workers' Applier as the live state, one goroutine
// per partition. Each room runs the same day: four users join, one locks
// (another is refused), uploads with progress complete or fail, the lock
// is released, everybody leaves and two come back.
func writeLog(ctx context.Context, c *streams.Client, n, rooms int) error {
	a := workers.NewApplier(c, 30*time.Second, workers.DefaultEmptyRoomTTL, nil).RoomsOnly()
	parts := c.Partitions()
	queues := make([]chan *streams.Envelope, parts)
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for p := range queues {
		queues[p] = make(chan *streams.Envelope, 1024)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[p] = applyQueue(ctx, c, a, p, queues[p])
		}()
	}
	at := time.Now().Add(-time.Hour)
	i := 0
	for step := 0; i < n; step++ {
		for r := 0; r < rooms && i < n; r++ {
			env := dayStep(fmt.Sprintf("room-%06d", r), step)
			at = at.Add(time.Microsecond * 100)
			env.At = at
			queues[streams.Partition(env.RoomID, parts)] <- env
			i++
		}
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func applyQueue(ctx context.Context, c *streams.Client, a *workers.Applier, p int, q <-chan *streams.Envelope) error {
	batch := make([]*streams.Envelope, 0, 256)
	flush := func() error {
		cmds := make([]*redis.StringCmd, len(batch))
		_, err := c.Redis().Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for i, env := range batch {
				cmds[i] = pipe.XAdd(ctx, &redis.XAddArgs{Stream: c.Keys.Inbound(p), Values: env.Values()})
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i, env := range batch {
			env.ID = cmds[i].Val()
			if _, err := a.Apply(ctx, p, 1, env); err != nil {
				return err
			}
		}
		batch = batch[:0]
		return nil
	}
	for env := range q {
		batch = append(batch, env)
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// dayStep returns step s of a room's day (50 entries long, then it starts
// over with new uploads).
func dayStep(room string, s int) *streams.Envelope {
	users := []string{"ana", "ben", "cy", "dee"}
	u := func(i int) (string, string, string) {
		return users[i], users[i] + " " + room, room + "-" + users[i]
	}
	cycle, k := s/50, s%50
	env := func(i int, typ string, payload any) *streams.Envelope {
		id, name, sock := u(i)
		e := &streams.Envelope{Type: typ, RoomID: room, UserID: id, UserName: name, SessionID: "ss-" + sock,
			SocketID: sock, ConnectorID: "c" + strconv.Itoa(i%3), HasAck: true, AckID: int64(s)}
		if payload != nil {
			e.Data, _ = json.Marshal(payload)
		}
		return e
	}
	file := func(i int) string { return fmt.Sprintf("f-%d-%d", cycle, i) }
	switch {
	case k < 4:
		return env(k, schemas.EventJoinRoom, schemas.JoinRoomPayload{RoomID: room})
	case k == 4:
		return env(0, schemas.EventLockRoom, schemas.LockRoomPayload{RoomID: room, Reason: "editing"})
	case k == 5:
		return env(1, schemas.EventLockRoom, schemas.LockRoomPayload{RoomID: room})
	case k == 6:
		return env(0, schemas.EventFileUploadStarted, schemas.FileUploadStartedPayload{FileID: file(0), FileName: "report.pdf", RoomID: room, Size: 1 << 20, MimeType: "application/pdf"})
	case k < 27:
		done := int64(k-6) * (1 << 20) / 21
		return env(0, schemas.EventFileUploadProgress, schemas.FileUploadProgressPayload{FileID: file(0), UploadID: file(0), FileName: "report.pdf",
			RoomID: room, BytesUploaded: done, TotalBytes: 1 << 20, Percentage: float64(done) * 100 / (1 << 20)})
	case k == 27:
		return env(0, schemas.EventFileUploadCompleted, schemas.FileUploadCompletedPayload{FileID: file(0), FileName: "report.pdf", RoomID: room, Size: 1 << 20, MimeType: "application/pdf"})
	case k == 28:
		return env(1, schemas.EventUnlockRoom, schemas.UnlockRoomPayload{RoomID: room})
	case k == 29:
		return env(0, schemas.EventUnlockRoom, schemas.UnlockRoomPayload{RoomID: room})
	case k == 30:
		return env(2, schemas.EventFileUploadStarted, schemas.FileUploadStartedPayload{FileID: file(2), FileName: "photo.jpg", RoomID: room, Size: 4 << 20})
	case k < 42:
		done := int64(k-30) * (4 << 20) / 12
		return env(2, schemas.EventFileUploadProgress, schemas.FileUploadProgressPayload{FileID: file(2), UploadID: file(2), FileName: "photo.jpg",
			RoomID: room, BytesUploaded: done, TotalBytes: 4 << 20, Percentage: float64(done) * 100 / (4 << 20)})
	case k == 42:
		return env(2, schemas.EventFileUploadFailed, schemas.FileUploadFailedPayload{FileID: file(2), RoomID: room, Reason: "network"})
	case k < 47:
		return env(k-43, schemas.EventLeaveRoom, schemas.LeaveRoomPayload{RoomID: room})
	case k == 47:
		return env(3, schemas.EventLockRoom, schemas.LockRoomPayload{RoomID: room})
	default:
		return env(k-48, schemas.EventJoinRoom, schemas.JoinRoomPayload{RoomID: room})
	}
}
