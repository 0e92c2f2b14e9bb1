package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/infra/testredis"
	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// verifyAll runs Verify and returns its summary and the reports of rooms
// that do not match, sorted by room.
func verifyAll(t *testing.T, r *Replayer, opts VerifyOptions) (Summary, []RoomReport) {
	t.Helper()
	var reps []RoomReport
	sum, err := r.Verify(context.Background(), opts, func(rep RoomReport) error {
		if rep.Status != RoomMatches {
			reps = append(reps, rep)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	sort.Slice(reps, func(i, j int) bool { return reps[i].Room < reps[j].Room })
	return sum, reps
}

// keysUnder lists the keys that start with prefix.
func keysUnder(t *testing.T, rdb redis.UniversalClient, prefix string) []string {
	t.Helper()
	var out []string
	if err := scanKeys(context.Background(), rdb, globEscape(prefix)+"*", 0, func(ks []string) error {
		out = append(out, ks...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func TestVerifyFindsNoDifferenceThenTheCorruption(t *testing.T) {
	rdb := testredis.Start(t, nil).Client()
	lw := startLiveWorker(t, rdb, "live:", 4)
	lw.story()
	ctx := context.Background()
	var progress bytes.Buffer
	r := New(rdb, lw.cfg, &Options{EmptyRoomTTL: time.Hour, Progress: &progress})

	sum, reps := verifyAll(t, r, VerifyOptions{})
	if len(reps) != 0 || sum.Differing != 0 {
		t.Fatalf("a healthy deployment differs from its log: %+v", reps)
	}
	// design, ops, lobby (only a refused command), empty (joined and left).
	if sum.Rooms != 4 || sum.Matching != 4 {
		t.Errorf("summary: %+v, want 4 rooms that match", sum)
	}
	if sum.Entries < 20 {
		t.Errorf("only %d entries replayed", sum.Entries)
	}
	if !strings.Contains(progress.String(), "verify: ") {
		t.Errorf("no progress line on the progress writer: %q", progress.String())
	}
	if left := keysUnder(t, rdb, "live:replay:"); len(left) != 0 {
		t.Errorf("scratch keys left behind: %v", left)
	}

	// Break the live state the way a bug or a stray write would.
	k := lw.c.Keys
	f1, err := rdb.HGet(ctx, k.RoomFiles("design"), "f1").Result()
	if err != nil {
		t.Fatalf("design has no file f1: %v", err)
	}
	rdb.HSet(ctx, k.Room("design"), "isLocked", "true", "lockedBy", "mallory")
	rdb.HDel(ctx, k.RoomFiles("design"), "f1")
	rdb.SAdd(ctx, k.RoomUsers("ops"), "mallory")
	rdb.HSet(ctx, k.Room("ghost"), "id", "ghost")

	sum, reps = verifyAll(t, r, VerifyOptions{})
	want := []RoomReport{
		{Room: "design", Status: RoomDiffers, Diffs: []Diff{
			{Key: "live:room:{design}", Field: "isLocked", Log: "false", Live: "true"},
			{Key: "live:room:{design}", Field: "lockedBy", Log: absent, Live: "mallory"},
			{Key: "live:room:{design}:files", Field: "f1", Log: f1, Live: absent},
		}},
		{Room: "ghost", Status: RoomDiffers, Note: "the log holds no entry that reached this room", Diffs: []Diff{
			{Key: "live:room:{ghost}", Field: "id", Log: absent, Live: "ghost"},
		}},
		{Room: "ops", Status: RoomDiffers, Diffs: []Diff{
			{Key: "live:room:{ops}:users", Field: "mallory", Log: absent, Live: "member"},
		}},
	}
	if diff := cmp.Diff(want, reps); diff != "" {
		t.Errorf("verify after corruption (-want,+got):\n%s", diff)
	}
	if sum.Differing != 3 || sum.Matching != 2 {
		t.Errorf("summary after corruption: %+v", sum)
	}

	// One room only.
	sum, reps = verifyAll(t, r, VerifyOptions{Room: "ops"})
	if sum.Rooms != 1 || len(reps) != 1 || reps[0].Room != "ops" {
		t.Errorf("verify -room ops: %+v %+v", sum, reps)
	}
}

func TestVerifyKeepsTheRebuiltStateWhenAsked(t *testing.T) {
	rdb := testredis.Start(t, nil).Client()
	lw := startLiveWorker(t, rdb, "", 2)
	lw.send(alice, "join-room", "r1", map[string]string{"roomId": "r1"})
	lw.settle()
	r := New(rdb, lw.cfg, &Options{Keep: true, ScratchPrefix: "kept:", EmptyRoomTTL: time.Hour})
	if sum, reps := verifyAll(t, r, VerifyOptions{}); sum.Matching != 1 || len(reps) != 0 {
		t.Fatalf("verify: %+v %+v", sum, reps)
	}
	ctx := context.Background()
	if ok, _ := rdb.SIsMember(ctx, "kept:room:{r1}:users", "alice").Result(); !ok {
		t.Fatalf("kept scratch copy lacks alice: %v", keysUnder(t, rdb, "kept:"))
	}
	// A kept prefix is in use: a second run must not mix into it.
	if _, err := r.Verify(ctx, VerifyOptions{}, nil); err == nil || !strings.Contains(err.Error(), "already holds data") {
		t.Errorf("second run into a kept prefix: %v", err)
	}
	if _, err := r.Clean(ctx, "room:"); err == nil {
		t.Errorf("clean of a prefix that covers live keys was accepted")
	}
	n, err := r.Clean(ctx, "kept:")
	if err != nil || n == 0 {
		t.Fatalf("clean: %d keys, %v", n, err)
	}
	if left := keysUnder(t, rdb, "kept:"); len(left) != 0 {
		t.Errorf("left after clean: %v", left)
	}
	if ok, _ := rdb.SIsMember(ctx, "room:{r1}:users", "alice").Result(); !ok {
		t.Errorf("clean touched the live state")
	}
	if _, err := r.Clean(ctx, "nothing-here:"); err == nil || !strings.Contains(err.Error(), "not a prefix made by replay") {
		t.Errorf("clean of a prefix replay did not make: %v", err)
	}
}

func TestScratchPrefixMustNotReachLiveKeys(t *testing.T) {
	for _, tc := range []struct {
		scratch, live string
		ok            bool
	}{
		{"replay:1:", "", true},
		{"prod:replay:1:", "prod:", true},
		{"investigation:", "prod:", true},
		{"", "prod:", false},
		{"pro", "prod:", false},
		{"prod:", "prod:", false},
		{"prod:room:", "prod:", false},
		{"room:", "", false},
		{"r", "", false},
		{"in:", "", false},
		{"meta", "", false},
		{"met", "", false},
		{"meta:", "", true},
		{"a b", "", false},
		{"x{y}", "", false},
	} {
		err := checkPrefix(tc.scratch, tc.live)
		if (err == nil) != tc.ok {
			t.Errorf("checkPrefix(%q, live %q) = %v, want ok=%v", tc.scratch, tc.live, err, tc.ok)
		}
	}
}

func TestGlobEscape(t *testing.T) {
	if got := globEscape(`a*b?c[d]e\f`); got != `a\*b\?c\[d\]e\\f` {
		t.Errorf("globEscape = %s", got)
	}
}

func TestVerifyWhileTheLogGrows(t *testing.T) {
	rdb := testredis.Start(t, nil).Client()
	lw := startLiveWorker(t, rdb, "live:", 2)
	ctx := context.Background()
	for i := 0; i < 4; i++ {
		room := fmt.Sprintf("busy-%d", i)
		lw.send(alice, schemas.EventJoinRoom, room, schemas.JoinRoomPayload{RoomID: room})
	}
	progress := func(i int) *streams.Envelope {
		room := fmt.Sprintf("busy-%d", i%4)
		b, _ := json.Marshal(schemas.FileUploadProgressPayload{FileID: "f", UploadID: "f", FileName: "x", RoomID: room,
			BytesUploaded: int64(i), TotalBytes: 1 << 30, Percentage: float64(i) / (1 << 30)})
		return &streams.Envelope{Type: schemas.EventFileUploadProgress, RoomID: room, UserID: alice.user, UserName: alice.name,
			SocketID: alice.socket, ConnectorID: alice.conn, Data: b, At: time.Now()}
	}
	for i := 0; i < 3000; i++ { // a log long enough for verify to take a while
		if _, err := lw.c.Append(ctx, progress(i)); err != nil {
			t.Fatal(err)
		}
	}
	lw.send(alice, schemas.EventFileUploadStarted, "busy-0", schemas.FileUploadStartedPayload{FileID: "f", FileName: "x", RoomID: "busy-0", Size: 1 << 30})
	lw.settle()
	archive := export(t, New(rdb, lw.cfg, nil), ExportOptions{})

	// A connector keeps appending while verify runs: rooms that change
	// under it are caught up or set aside, never reported as different.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 20000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := lw.c.Append(ctx, progress(i)); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()
	r := New(rdb, lw.cfg, &Options{EmptyRoomTTL: time.Hour})
	for round := 0; round < 2; round++ {
		sum, reps := verifyAll(t, r, VerifyOptions{SettleWait: 100 * time.Millisecond})
		if sum.Differing != 0 {
			t.Fatalf("verify while the log grows reports differences: %+v", reps)
		}
		t.Logf("round %d: %+v", round, sum)
	}
	close(stop)
	<-done
	lw.settle()
	if sum, reps := verifyAll(t, r, VerifyOptions{}); sum.Matching != 4 || len(reps) != 0 {
		t.Errorf("verify once the log is still: %+v %+v", sum, reps)
	}

	// An archive taken earlier ends before the live state: set aside.
	if _, err := r.Import(ctx, bytes.NewReader(archive), "old:"); err != nil {
		t.Fatal(err)
	}
	ri := New(rdb, lw.cfg, &Options{EmptyRoomTTL: time.Hour, LogPrefix: "old:"})
	sum, reps := verifyAll(t, ri, VerifyOptions{SettleRounds: -1})
	if sum.Differing != 0 || sum.Unsettled != 4 {
		t.Errorf("verify of an older archive: %+v %+v", sum, reps)
	}
}
