package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/infra/testredis"
	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
	"github.com/roomstream/roomstream/workers"
)

// statuses maps rooms to their verdicts.
func statuses(t *testing.T, r *Replayer) (Summary, map[string]string) {
	t.Helper()
	out := map[string]string{}
	sum, err := r.Verify(context.Background(), VerifyOptions{}, func(rep RoomReport) error {
		out[rep.Room] = rep.Status
		return nil
	})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return sum, out
}

func TestRoomsOlderThanTheLogAreMarkedNotGuessed(t *testing.T) {
	rdb := testredis.Start(t, nil).Client()
	lw := startLiveWorker(t, rdb, "live:", 1)
	ctx := context.Background()
	lw.send(alice, schemas.EventJoinRoom, "old", schemas.JoinRoomPayload{RoomID: "old"})
	lw.send(alice, schemas.EventFileUploadStarted, "old", schemas.FileUploadStartedPayload{FileID: "f0", FileName: "a.txt", RoomID: "old", Size: 1})
	lw.send(alice, schemas.EventFileUploadCompleted, "old", schemas.FileUploadCompletedPayload{FileID: "f0", FileName: "a.txt", RoomID: "old", Size: 1})
	cut := lw.send(bob, schemas.EventJoinRoom, "new", schemas.JoinRoomPayload{RoomID: "new"})
	lw.send(carol, schemas.EventJoinRoom, "old", schemas.JoinRoomPayload{RoomID: "old"})
	lw.send(carol, schemas.EventLockRoom, "old", schemas.LockRoomPayload{RoomID: "old"})
	lw.send(bob, schemas.EventLockRoom, "new", schemas.LockRoomPayload{RoomID: "new"})
	lw.settle()
	r := New(rdb, lw.cfg, &Options{EmptyRoomTTL: time.Hour})

	// An archive from the cut on leaves the older past out: its
	// partition is marked incomplete and stays so when imported.
	part := export(t, r, ExportOptions{Bounds: Bounds{Since: streams.MustID(cut).Time()}})
	var h Header
	_ = json.Unmarshal(bytes.SplitN(part, []byte("\n"), 2)[0], &h)
	if !cmp.Equal(h.Incomplete, []int{0}) {
		t.Fatalf("header of an export since the cut: %+v", h)
	}
	if _, err := r.Import(ctx, bytes.NewReader(part), "part:"); err != nil {
		t.Fatal(err)
	}
	empty := export(t, r, ExportOptions{Bounds: Bounds{Since: time.Now().Add(time.Hour)}})
	if _, err := r.Import(ctx, bytes.NewReader(empty), "none:"); err != nil {
		t.Fatal(err)
	}

	// Retention trims the live log at the same place.
	if err := rdb.XTrimMinID(ctx, lw.c.Keys.Inbound(0), cut).Err(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		prefix string
		want   map[string]string
	}{
		{"trimmed live log", "", map[string]string{"old": RoomTrimmed, "new": RoomMatches}},
		{"import since the cut", "part:", map[string]string{"old": RoomTrimmed, "new": RoomMatches}},
		{"import of nothing", "none:", map[string]string{"old": RoomTrimmed, "new": RoomTrimmed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ri := New(rdb, lw.cfg, &Options{EmptyRoomTTL: time.Hour, LogPrefix: tc.prefix})
			sum, got := statuses(t, ri)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("verdicts (-want,+got):\n%s", diff)
			}
			if sum.Differing != 0 {
				t.Errorf("summary: %+v", sum)
			}
			evs := timeline(t, ri, TimelineOptions{})
			for _, e := range evs {
				if e.HistoryTrimmed != (e.Room == "old") {
					t.Errorf("%s of room %s: historyTrimmed %v", e.Type, e.Room, e.HistoryTrimmed)
				}
			}
		})
	}

	// The room created after the cut is still fully checked.
	rdb.HSet(ctx, lw.c.Keys.Room("new"), "lockedBy", "mallory")
	if _, got := statuses(t, r); got["new"] != RoomDiffers {
		t.Errorf("a corrupted room created after the cut: %s", got["new"])
	}
}

// liveApplier plays the workers' part by hand, so that a test can set
// entry times and ids far apart and let Redis expire rooms for real.
type liveApplier struct {
	t   *testing.T
	rdb redis.UniversalClient
	c   *streams.Client
	a   *workers.Applier
}

func (l *liveApplier) apply(w who, typ, room string, at time.Time, payload any) {
	l.t.Helper()
	ctx := context.Background()
	env := &streams.Envelope{Type: typ, RoomID: room, UserID: w.user, UserName: w.name, SessionID: "ss-" + w.socket,
		SocketID: w.socket, ConnectorID: w.conn, At: at}
	if payload != nil {
		env.Data, _ = json.Marshal(payload)
	}
	p := streams.Partition(room, l.c.Partitions())
	id, err := l.rdb.XAdd(ctx, &redis.XAddArgs{Stream: l.c.Keys.Inbound(p), ID: strconv.FormatInt(at.UnixMilli(), 10) + "-*", Values: env.Values()}).Result()
	if err != nil {
		l.t.Fatal(err)
	}
	env.ID = id
	if _, err := l.a.Apply(ctx, p, 1, env); err != nil {
		l.t.Fatal(err)
	}
}

func TestReplayExpiresEmptyRoomsAsRedisDid(t *testing.T) {
	rdb := testredis.Start(t, nil).Client()
	cfg := testConfig("live:", 2)
	c := streams.New(rdb, cfg)
	l := &liveApplier{t: t, rdb: rdb, c: c, a: workers.NewApplier(c, time.Second, time.Second, nil)}
	t0 := time.Now().Add(-time.Hour)
	l.apply(alice, schemas.EventJoinRoom, "r1", t0, nil)
	l.apply(alice, schemas.EventFileUploadStarted, "r1", t0.Add(time.Second/2), schemas.FileUploadStartedPayload{FileID: "f1", FileName: "a", RoomID: "r1", Size: 1})
	l.apply(alice, schemas.EventFileUploadCompleted, "r1", t0.Add(time.Second), schemas.FileUploadCompletedPayload{FileID: "f1", FileName: "a", RoomID: "r1", Size: 1})
	l.apply(alice, schemas.EventLeaveRoom, "r1", t0.Add(2*time.Second), nil)
	l.apply(carol, schemas.EventJoinRoom, "r2", t0.Add(3*time.Second), nil)
	l.apply(carol, schemas.EventLeaveRoom, "r2", t0.Add(4*time.Second), nil)
	time.Sleep(1500 * time.Millisecond) // the empty rooms expire (EMPTY_ROOM_TTL 1s)
	l.apply(bob, schemas.EventJoinRoom, "r1", t0.Add(10*time.Second), nil)
	if n, _ := rdb.HLen(context.Background(), c.Keys.RoomFiles("r1")).Result(); n != 0 {
		t.Fatalf("the recreated room kept its files: the test's premise is wrong")
	}

	r := New(rdb, cfg, &Options{EmptyRoomTTL: time.Second})
	sum, got := statuses(t, r)
	if diff := cmp.Diff(map[string]string{"r1": RoomMatches, "r2": RoomMatches}, got); diff != "" || sum.Differing != 0 {
		t.Errorf("verdicts (-want,+got):\n%s\n%+v", diff, sum)
	}
	evs := timeline(t, r, TimelineOptions{Room: "r1"})
	if len(evs) != 5 || !evs[4].RoomExpired || evs[3].RoomExpired {
		t.Errorf("timeline of r1: %+v", evs)
	}
	// Told the wrong EMPTY_ROOM_TTL, replay keeps r1's file: the expiry it
	// simulates is what makes the difference.
	wrong := New(rdb, cfg, &Options{EmptyRoomTTL: time.Hour})
	if _, got := statuses(t, wrong); got["r1"] != RoomDiffers {
		t.Errorf("with a wrong TTL: %v", got)
	}
}

// TestReplayAppliesTheWorkersLimits: replay refuses what the workers
// refused under their room limits, so the rooms it rebuilds match; told
// other limits, it rebuilds another room.
func TestReplayAppliesTheWorkersLimits(t *testing.T) {
	rdb := testredis.Start(t, nil).Client()
	cfg := testConfig("live:", 2)
	c := streams.New(rdb, cfg)
	limits := workers.Limits{RoomMaxMembers: 1}
	l := &liveApplier{t: t, rdb: rdb, c: c, a: workers.NewApplier(c, time.Second, time.Hour, nil).WithLimits(limits)}
	t0 := time.Now().Add(-time.Minute)
	l.apply(alice, schemas.EventJoinRoom, "r1", t0, nil)
	l.apply(bob, schemas.EventJoinRoom, "r1", t0.Add(time.Second), nil)

	r := New(rdb, cfg, &Options{EmptyRoomTTL: time.Hour, Limits: limits})
	if _, got := statuses(t, r); got["r1"] != RoomMatches {
		t.Errorf("with the workers' limits: %v", got)
	}
	evs := timeline(t, r, TimelineOptions{Room: "r1"})
	if len(evs) != 2 || evs[1].Status != "room_full" || !strings.Contains(evs[1].Reason, "1 users at most") {
		t.Errorf("timeline of r1: %+v", evs)
	}
	if _, got := statuses(t, New(rdb, cfg, &Options{EmptyRoomTTL: time.Hour})); got["r1"] != RoomDiffers {
		t.Errorf("with the default limits: %v", got)
	}
}
