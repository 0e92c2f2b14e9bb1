package audit

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
	"github.com/roomstream/roomstream/workers"
)

// liveWorker writes the live state and the log that the package reads: a
// real workers.Worker running in the test's process, applying the
// inbound streams of a real Redis, fed by hand-made envelopes appended
// the way connectors append them (no connector, no socket).
type liveWorker struct {
	t    *testing.T
	ctx  context.Context
	rdb  redis.UniversalClient
	cfg  streams.Config
	c    *streams.Client
	seq  int64
	stop func()
}

func testConfig(prefix string, partitions int) streams.Config {
	return streams.Config{KeyPrefix: prefix, Partitions: partitions, RecoveryWindow: 2 * time.Minute,
		InboundRetention: time.Hour, InboundMaxLen: 100000}
}

// startLiveWorker runs a worker on rdb under prefix until the test ends.
func startLiveWorker(t *testing.T, rdb redis.UniversalClient, prefix string, partitions int) *liveWorker {
	t.Helper()
	cfg := testConfig(prefix, partitions)
	lw := &liveWorker{t: t, ctx: context.Background(), rdb: rdb, cfg: cfg, c: streams.New(rdb, cfg)}
	wcfg := workers.Config{Config: cfg, LeaseTTL: time.Second, ClaimMinIdle: 500 * time.Millisecond, MaxAttempts: 2,
		BatchSize: 100, LockGrace: 50 * time.Millisecond, EmptyRoomTTL: time.Hour, TrimInterval: time.Hour,
		ReapInterval: 100 * time.Millisecond, WorkerID: "w1"}
	if err := wcfg.Validate(); err != nil {
		t.Fatal(err)
	}
	w := workers.New(wcfg, lw.c, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = w.Run(ctx) }()
	lw.stop = func() { cancel(); w.Wait() }
	t.Cleanup(lw.stop)
	return lw
}

type who struct{ user, name, socket, conn string }

var (
	alice  = who{"alice", "Alice", "sA", "c1"}
	bob    = who{"bob", "Bob", "sB", "c2"}
	carol  = who{"carol", "Carol", "sC", "c1"}
	alice2 = who{"alice", "Alice", "sA2", "c2"}
	dave   = who{"dave", "Dave", "sD", "c1"}
	eve    = who{"eve", "Eve", "sE", "c2"}
)

// send appends one command as a connector would and returns its id. Ids
// are kept a few milliseconds apart so that tests can cut between them by
// time.
func (lw *liveWorker) send(w who, typ, room string, payload any) string {
	lw.t.Helper()
	lw.seq++
	env := &streams.Envelope{Type: typ, RoomID: room, UserID: w.user, UserName: w.name, SessionID: "ss-" + w.socket,
		SocketID: w.socket, ConnectorID: w.conn, HasAck: true, AckID: lw.seq, At: time.Now()}
	switch p := payload.(type) {
	case nil:
	case string:
		env.Data = []byte(p)
	default:
		b, err := json.Marshal(p)
		if err != nil {
			lw.t.Fatal(err)
		}
		env.Data = b
	}
	return lw.append(env)
}

func (lw *liveWorker) append(env *streams.Envelope) string {
	lw.t.Helper()
	id, err := lw.c.Append(lw.ctx, env)
	if err != nil {
		lw.t.Fatal(err)
	}
	time.Sleep(3 * time.Millisecond)
	return id
}

// settle waits until the worker applied (or dead-lettered) every entry.
func (lw *liveWorker) settle() {
	lw.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if lw.settled() {
			return
		}
		if time.Now().After(deadline) {
			lw.t.Fatal("the worker did not apply the log within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (lw *liveWorker) settled() bool {
	for p := 0; p < lw.cfg.Partitions; p++ {
		key := lw.c.Keys.Inbound(p)
		info, err := lw.rdb.XInfoStream(lw.ctx, key).Result()
		if err != nil {
			continue // no such stream
		}
		groups, err := lw.rdb.XInfoGroups(lw.ctx, key).Result()
		if err != nil {
			return false
		}
		ok := false
		for _, g := range groups {
			ok = ok || g.Name == streams.Group && g.LastDeliveredID == info.LastGeneratedID && g.Pending == 0
		}
		if !ok {
			return false
		}
	}
	return true
}

// waitField waits until a field of a live room hash has a value.
func (lw *liveWorker) waitField(room, field, want string) {
	lw.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, _ := lw.rdb.HGet(lw.ctx, lw.c.Keys.Room(room), field).Result()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			lw.t.Fatalf("room %s: %s is %q, want %q", room, field, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// story plays a day in a few rooms: joins, a second tab, locks and
// refusals, uploads, a lock released by the server after its holder
// left, a recovered socket moving, a dropped socket, a command for a room
// nobody joined, a room that empties, and an entry the workers cannot
// apply. It returns the ids of some entries by name.
func (lw *liveWorker) story() map[string]string {
	lw.t.Helper()
	ids := map[string]string{}
	join := func(w who, room string) string {
		return lw.send(w, schemas.EventJoinRoom, room, schemas.JoinRoomPayload{RoomID: room})
	}
	ids["alice-joins"] = join(alice, "design")
	join(bob, "design")
	ids["alice-locks"] = lw.send(alice, schemas.EventLockRoom, "design", schemas.LockRoomPayload{RoomID: "design", Reason: "review"})
	ids["bob-locks"] = lw.send(bob, schemas.EventLockRoom, "design", schemas.LockRoomPayload{RoomID: "design"})
	lw.send(bob, schemas.EventFileUploadStarted, "design", schemas.FileUploadStartedPayload{FileID: "fb", FileName: "b.txt", RoomID: "design", Size: 10})
	lw.send(alice, schemas.EventFileUploadStarted, "design", schemas.FileUploadStartedPayload{FileID: "f1", FileName: "spec.pdf", RoomID: "design", Size: 2048, MimeType: "application/pdf"})
	lw.send(alice, schemas.EventFileUploadProgress, "design", schemas.FileUploadProgressPayload{FileID: "f1", UploadID: "f1", FileName: "spec.pdf", RoomID: "design", BytesUploaded: 1024, TotalBytes: 2048, Percentage: 50})
	lw.send(alice, schemas.EventFileUploadCompleted, "design", schemas.FileUploadCompletedPayload{FileID: "f1", FileName: "spec.pdf", RoomID: "design", Size: 2048, MimeType: "application/pdf"})
	lw.send(alice, schemas.EventFileUploadStarted, "design", schemas.FileUploadStartedPayload{FileID: "f2", FileName: "draft.doc", RoomID: "design", Size: 99})
	lw.send(alice, schemas.EventFileUploadFailed, "design", schemas.FileUploadFailedPayload{FileID: "f2", RoomID: "design", Reason: "network"})
	ids["bob-unlocks"] = lw.send(bob, schemas.EventUnlockRoom, "design", schemas.UnlockRoomPayload{RoomID: "design"})
	lw.send(alice, schemas.EventUnlockRoom, "design", schemas.UnlockRoomPayload{RoomID: "design"})
	lw.send(bob, schemas.EventLockRoom, "design", schemas.LockRoomPayload{RoomID: "design", Reason: "mine now"})
	ids["bad"] = lw.send(alice, schemas.EventLockRoom, "design", "{not json")
	lw.send(bob, schemas.EventLeaveRoom, "design", schemas.LeaveRoomPayload{RoomID: "design"})

	join(carol, "ops")
	lw.send(carol, schemas.EventFileUploadStarted, "ops", schemas.FileUploadStartedPayload{FileID: "g1", FileName: "logs.tgz", RoomID: "ops", Size: 1 << 20})
	join(alice2, "ops")
	lw.append(&streams.Envelope{Type: schemas.CmdMove, RoomID: "ops", SocketID: carol.socket, UserID: carol.user, Target: "c2", At: time.Now()})
	lw.append(&streams.Envelope{Type: schemas.CmdDisconnect, RoomID: "ops", SocketID: alice2.socket, ConnectorID: alice2.conn,
		UserID: alice2.user, UserName: alice2.name, Reason: schemas.ReasonDisconnected, At: time.Now()})

	lw.send(dave, schemas.EventLockRoom, "lobby", schemas.LockRoomPayload{RoomID: "lobby"})
	join(eve, "empty")
	lw.send(eve, schemas.EventLeaveRoom, "empty", schemas.LeaveRoomPayload{RoomID: "empty"})

	lw.settle()
	// Bob left holding the lock: the janitor releases it after the grace
	// period by appending lock-expire to the log.
	lw.waitField("design", "isLocked", "false")
	lw.settle()
	return ids
}
