package workers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	proxies "github.com/roomstream/roomstream/e2e/harness"
	"github.com/roomstream/roomstream/infra/testredis"
	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// sharedConfig is a worker of n partitions whose leases outlive the
// tests (the balancer leaves what a test does alone).
func sharedConfig(n int) Config {
	return Config{
		Config:   streams.Config{Partitions: n, KeyPrefix: "s:", RecoveryWindow: time.Minute, InboundRetention: time.Hour, InboundMaxLen: 100000},
		LeaseTTL: 30 * time.Second, ClaimMinIdle: 200 * time.Millisecond, MaxAttempts: 4, BatchSize: 50,
		LockGrace: time.Second, EmptyRoomTTL: time.Hour, TrimInterval: time.Hour, ReapInterval: time.Second,
		ConnectorTimeout: time.Second,
	}
}

// runWorker runs a worker of cfg on rdb until the test ends, and waits
// until it owns every partition.
func runWorker(t *testing.T, rdb redis.UniversalClient, cfg Config) (*Worker, *streams.Client) {
	t.Helper()
	return runWorkerWith(t, rdb, cfg, nil)
}

// runWorkerWith is runWorker with options.
func runWorkerWith(t *testing.T, rdb redis.UniversalClient, cfg Config, opts *Options) (*Worker, *streams.Client) {
	t.Helper()
	c := streams.New(rdb, cfg.Config)
	w := New(cfg, c, slog.New(slog.NewTextHandler(testLogOut(), &slog.HandlerOptions{Level: slog.LevelDebug})), opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(10 * time.Second); len(w.Owned()) < cfg.Partitions; {
		if time.Now().After(deadline) {
			t.Fatalf("owns %v of %d partitions", w.Owned(), cfg.Partitions)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return w, c
}

// sender appends the progress reports of one user in many rooms, as
// connectors do, and checks what connector c1 received.
type sender struct {
	t     *testing.T
	c     *streams.Client
	rooms []string
	seq   uint64
	sent  map[string][]int // room -> report numbers sent (after the join)
}

func newSender(t *testing.T, c *streams.Client, rooms int) *sender {
	s := &sender{t: t, c: c, sent: map[string][]int{}}
	for i := range rooms {
		room := fmt.Sprintf("room-%d", i)
		s.rooms = append(s.rooms, room)
		s.append(room, schemas.EventJoinRoom, nil)
	}
	return s
}

func (s *sender) append(room, typ string, payload any) {
	s.t.Helper()
	s.seq++
	env := &streams.Envelope{Type: typ, RoomID: room, UserID: "alice", UserName: "Alice", SessionID: "ss", SocketID: "sA",
		ConnectorID: "c1", Origin: "o1", Seq: s.seq, At: time.Now()}
	if payload != nil {
		b, _ := json.Marshal(payload)
		cmd, verr := schemas.ParseCommand(typ, b, "alice")
		if verr != nil {
			s.t.Fatal(verr)
		}
		env.Data = cmd.Data
	}
	if _, err := s.c.Append(context.Background(), env); err != nil {
		s.t.Fatal(err)
	}
}

// progress sends report n in every room.
func (s *sender) progress(n int) {
	for _, room := range s.rooms {
		s.append(room, schemas.EventFileUploadProgress, schemas.FileUploadProgressPayload{FileID: "f-" + room, UploadID: "u-" + room,
			FileName: "a.bin", RoomID: room, BytesUploaded: int64(n), TotalBytes: 1 << 20, Percentage: float64(n) / (1 << 20)})
		s.sent[room] = append(s.sent[room], n)
	}
}

// received returns the progress reports connector c1 got, per room, in
// the order of its outbound stream.
func (s *sender) received() map[string][]int {
	msgs, err := s.c.OutboundRange(context.Background(), "c1", "-", "+", 0)
	if err != nil {
		s.t.Fatal(err)
	}
	got := map[string][]int{}
	lastSource := map[string]streams.ID{}
	for _, m := range msgs {
		o, err := streams.DecodeOutbound(m.ID, m.Values)
		if err != nil {
			s.t.Fatal(err)
		}
		// An entry written again (a round trip whose reply was lost)
		// is dropped by connectors: per room, sources only grow.
		if last, ok := lastSource[o.Room]; ok && !last.Less(mustID(s.t, o.Source)) {
			continue
		}
		lastSource[o.Room] = mustID(s.t, o.Source)
		for _, msg := range o.Messages {
			if msg.Event != schemas.EventFileUploadProgress {
				continue
			}
			var p schemas.FileUploadProgressPayload
			_ = json.Unmarshal(msg.Body, &p)
			got[p.RoomID] = append(got[p.RoomID], int(p.BytesUploaded))
		}
	}
	return got
}

// waitAll waits until every report sent was received once, in order.
func (s *sender) waitAll(d time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := s.received()
		ok := true
		for _, room := range s.rooms {
			if fmt.Sprint(got[room]) != fmt.Sprint(s.sent[room]) {
				ok = false
				if time.Now().After(deadline) {
					s.t.Fatalf("room %s: received %v, sent %v", room, got[room], s.sent[room])
				}
			}
		}
		if ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mustID(t *testing.T, s string) streams.ID {
	t.Helper()
	id, err := streams.ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Entries of every partition a worker owns are read and applied
// together, each once, in order per room.
func TestSharedReadAppliesEveryPartition(t *testing.T) {
	rs := testredis.Start(t, nil)
	_, c := runWorker(t, rs.Client(), sharedConfig(4))
	s := newSender(t, c, 12)
	for n := 1; n <= 20; n++ {
		s.progress(n)
	}
	s.waitAll(15 * time.Second)
}

// The reply of a read lost on its way (the connection breaks after Redis
// recorded the delivery): the worker reads its own pending entries
// again, so nothing is skipped, applied twice or out of order.
func TestSharedReadAfterALostReply(t *testing.T) {
	rs := testredis.Start(t, nil)
	proxy := proxies.StartProxy(t, rs.Addr())
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	_, c := runWorker(t, rdb, sharedConfig(4))
	direct := streams.New(rs.Client(), c.Config())
	s := newSender(t, direct, 8)
	s.progress(1)
	s.waitAll(10 * time.Second)
	for n := 2; n <= 10; n++ {
		if n == 4 {
			proxy.LoseReply("xreadgroup")
		}
		s.progress(n)
		time.Sleep(5 * time.Millisecond)
	}
	s.waitAll(15 * time.Second)
	if proxy.Lost() != 1 {
		t.Fatalf("the proxy lost %d read replies, want 1", proxy.Lost())
	}
}

// A partition stopped while the shared read waits for entries leaves it
// at once (its lease is released when it is done): the read is woken,
// not waited out.
func TestStoppedPartitionLeavesAtOnce(t *testing.T) {
	rs := testredis.Start(t, nil)
	w, c := runWorker(t, rs.Client(), sharedConfig(2))
	time.Sleep(300 * time.Millisecond) // the shared read waits now
	start := time.Now()
	w.release(1)
	for {
		if holder, _, err := c.LeaseHolder(context.Background(), 1); err == nil && holder == "" {
			break
		}
		if time.Since(start) > 3*time.Second {
			t.Fatal("lease not released")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if d := time.Since(start); d > sharedBlock/2 {
		t.Errorf("released after %s: the shared read was not woken", d)
	}
}

// An entry that keeps failing (retried, then dead-lettered) holds up its
// partition only: the other partitions' entries keep flowing meanwhile.
func TestFailingEntryHoldsUpItsPartitionOnly(t *testing.T) {
	rs := testredis.Start(t, nil)
	cfg := sharedConfig(2)
	cfg.MaxAttempts = 6 // retried with backoff for about 1.5 s
	_, c := runWorker(t, rs.Client(), cfg)
	ctx := context.Background()
	// Two rooms on different partitions.
	bad, good := "", ""
	for i := 0; bad == "" || good == ""; i++ {
		room := fmt.Sprintf("r%d", i)
		if streams.Partition(room, 2) == 0 && bad == "" {
			bad = room
		} else if streams.Partition(room, 2) == 1 && good == "" {
			good = room
		}
	}
	// A room whose applied marker has the wrong type: its scripts fail
	// at their first command, every time.
	if err := rs.Client().Set(ctx, c.Keys.RoomApplied(bad), "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s := &sender{t: t, c: c, sent: map[string][]int{}}
	s.append(bad, schemas.EventJoinRoom, nil)
	time.Sleep(100 * time.Millisecond) // its partition is retrying it now
	start := time.Now()
	s.rooms = []string{good}
	s.append(good, schemas.EventJoinRoom, nil)
	s.progress(1)
	s.waitAll(5 * time.Second)
	if d := time.Since(start); d > time.Second {
		t.Errorf("the other partition's entries took %s, held up by the failing one", d)
	}
	// The failing entry ends in the dead letters.
	for deadline := time.Now().Add(10 * time.Second); ; {
		dead, err := c.DeadLetters(ctx, -1)
		if err == nil && len(dead) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dead letters %v %v", dead, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func testLogOut() io.Writer {
	if os.Getenv("WORKER_TEST_LOG") != "" {
		return os.Stderr
	}
	return io.Discard
}
