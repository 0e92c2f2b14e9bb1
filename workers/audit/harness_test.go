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

// deployment is a live roomstream deployment for tests: a real worker
// applying the inbound streams of a real Redis, fed by hand-made
// envelopes appended the way connectors append them.
type deployment struct {
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

// startDeployment runs a worker on rdb under prefix.
func startDeployment(t *testing.T, rdb redis.UniversalClient, prefix string, partitions int) *deployment {
	t.Helper()
	cfg := testConfig(prefix, partitions)
	d := &deployment{t: t, ctx: context.Background(), rdb: rdb, cfg: cfg, c: streams.New(rdb, cfg)}
	wcfg := workers.Config{Config: cfg, LeaseTTL: time.Second, ClaimMinIdle: 500 * time.Millisecond, MaxAttempts: 2,
		BatchSize: 100, LockGrace: 50 * time.Millisecond, EmptyRoomTTL: time.Hour, TrimInterval: time.Hour,
		ReapInterval: 100 * time.Millisecond, WorkerID: "w1"}
	if err := wcfg.Validate(); err != nil {
		t.Fatal(err)
	}
	w := workers.New(wcfg, d.c, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = w.Run(ctx) }()
	d.stop = func() { cancel(); w.Wait() }
	t.Cleanup(d.stop)
	return d
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
func (d *deployment) send(w who, typ, room string, payload any) string {
	d.t.Helper()
	d.seq++
	env := &streams.Envelope{Type: typ, RoomID: room, UserID: w.user, UserName: w.name, SessionID: "ss-" + w.socket,
		SocketID: w.socket, ConnectorID: w.conn, HasAck: true, AckID: d.seq, At: time.Now()}
	switch p := payload.(type) {
	case nil:
	case string:
		env.Data = []byte(p)
	default:
		b, err := json.Marshal(p)
		if err != nil {
			d.t.Fatal(err)
		}
		env.Data = b
	}
	return d.append(env)
}

func (d *deployment) append(env *streams.Envelope) string {
	d.t.Helper()
	id, err := d.c.Append(d.ctx, env)
	if err != nil {
		d.t.Fatal(err)
	}
	time.Sleep(3 * time.Millisecond)
	return id
}

// settle waits until the worker applied (or dead-lettered) every entry.
func (d *deployment) settle() {
	d.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if d.settled() {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatal("the worker did not apply the log within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *deployment) settled() bool {
	for p := 0; p < d.cfg.Partitions; p++ {
		key := d.c.Keys.Inbound(p)
		info, err := d.rdb.XInfoStream(d.ctx, key).Result()
		if err != nil {
			continue // no such stream
		}
		groups, err := d.rdb.XInfoGroups(d.ctx, key).Result()
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
func (d *deployment) waitField(room, field, want string) {
	d.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, _ := d.rdb.HGet(d.ctx, d.c.Keys.Room(room), field).Result()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("room %s: %s is %q, want %q", room, field, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// story plays a day in a few rooms: joins, a second tab, locks and
// refusals, uploads, a lock released by the server after its holder
// left, a recovered socket moving, a dropped socket, a command for a room
// nobody joined, a room that empties, and an entry the workers cannot
// apply. It returns the ids of some entries by name.
func (d *deployment) story() map[string]string {
	d.t.Helper()
	ids := map[string]string{}
	join := func(w who, room string) string {
		return d.send(w, schemas.EventJoinRoom, room, schemas.JoinRoomPayload{RoomID: room})
	}
	ids["alice-joins"] = join(alice, "design")
	join(bob, "design")
	ids["alice-locks"] = d.send(alice, schemas.EventLockRoom, "design", schemas.LockRoomPayload{RoomID: "design", Reason: "review"})
	ids["bob-locks"] = d.send(bob, schemas.EventLockRoom, "design", schemas.LockRoomPayload{RoomID: "design"})
	d.send(bob, schemas.EventFileUploadStarted, "design", schemas.FileUploadStartedPayload{FileID: "fb", FileName: "b.txt", RoomID: "design", Size: 10})
	d.send(alice, schemas.EventFileUploadStarted, "design", schemas.FileUploadStartedPayload{FileID: "f1", FileName: "spec.pdf", RoomID: "design", Size: 2048, MimeType: "application/pdf"})
	d.send(alice, schemas.EventFileUploadProgress, "design", schemas.FileUploadProgressPayload{FileID: "f1", UploadID: "f1", FileName: "spec.pdf", RoomID: "design", BytesUploaded: 1024, TotalBytes: 2048, Percentage: 50})
	d.send(alice, schemas.EventFileUploadCompleted, "design", schemas.FileUploadCompletedPayload{FileID: "f1", FileName: "spec.pdf", RoomID: "design", Size: 2048, MimeType: "application/pdf"})
	d.send(alice, schemas.EventFileUploadStarted, "design", schemas.FileUploadStartedPayload{FileID: "f2", FileName: "draft.doc", RoomID: "design", Size: 99})
	d.send(alice, schemas.EventFileUploadFailed, "design", schemas.FileUploadFailedPayload{FileID: "f2", RoomID: "design", Reason: "network"})
	ids["bob-unlocks"] = d.send(bob, schemas.EventUnlockRoom, "design", schemas.UnlockRoomPayload{RoomID: "design"})
	d.send(alice, schemas.EventUnlockRoom, "design", schemas.UnlockRoomPayload{RoomID: "design"})
	d.send(bob, schemas.EventLockRoom, "design", schemas.LockRoomPayload{RoomID: "design", Reason: "mine now"})
	ids["bad"] = d.send(alice, schemas.EventLockRoom, "design", "{not json")
	d.send(bob, schemas.EventLeaveRoom, "design", schemas.LeaveRoomPayload{RoomID: "design"})

	join(carol, "ops")
	d.send(carol, schemas.EventFileUploadStarted, "ops", schemas.FileUploadStartedPayload{FileID: "g1", FileName: "logs.tgz", RoomID: "ops", Size: 1 << 20})
	join(alice2, "ops")
	d.append(&streams.Envelope{Type: schemas.CmdMove, RoomID: "ops", SocketID: carol.socket, UserID: carol.user, Target: "c2", At: time.Now()})
	d.append(&streams.Envelope{Type: schemas.CmdDisconnect, RoomID: "ops", SocketID: alice2.socket, ConnectorID: alice2.conn,
		UserID: alice2.user, UserName: alice2.name, Reason: schemas.ReasonDisconnected, At: time.Now()})

	d.send(dave, schemas.EventLockRoom, "lobby", schemas.LockRoomPayload{RoomID: "lobby"})
	join(eve, "empty")
	d.send(eve, schemas.EventLeaveRoom, "empty", schemas.LeaveRoomPayload{RoomID: "empty"})

	d.settle()
	// Bob left holding the lock: the janitor releases it after the grace
	// period by appending lock-expire to the log.
	d.waitField("design", "isLocked", "false")
	d.settle()
	return ids
}
