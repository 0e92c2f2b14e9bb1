package audit

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/roomstream/roomstream/infra/testredis"
)

// TestReplayOnRedisCluster runs the audit tools against a 3-master Redis
// Cluster: partitions, rooms and scratch copies spread over the masters.
func TestReplayOnRedisCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	rdb := testredis.StartCluster(t).Client()
	lw := startLiveWorker(t, rdb, "live:", 8)
	lw.story()
	ctx := context.Background()
	r := New(rdb, lw.cfg, &Options{EmptyRoomTTL: time.Hour})

	sum, reps := verifyAll(t, r, VerifyOptions{})
	if sum.Matching != 4 || sum.Differing != 0 {
		t.Fatalf("verify on a cluster: %+v %+v", sum, reps)
	}
	evs := timeline(t, r, TimelineOptions{})
	parts := map[int]bool{}
	for _, e := range evs {
		parts[e.Partition] = true
	}
	if len(evs) < 20 || len(parts) < 2 {
		t.Errorf("timeline on a cluster: %d events from partitions %v", len(evs), parts)
	}
	out := export(t, r, ExportOptions{})
	if _, err := r.Import(ctx, bytes.NewReader(out), "inv:"); err != nil {
		t.Fatalf("import on a cluster: %v", err)
	}
	ri := New(rdb, lw.cfg, &Options{EmptyRoomTTL: time.Hour, LogPrefix: "inv:"})
	if diff := cmp.Diff(evs, timeline(t, ri, TimelineOptions{})); diff != "" {
		t.Errorf("timeline of the import (-live,+import):\n%s", diff)
	}

	rdb.HSet(ctx, lw.c.Keys.Room("ops"), "name", "renamed")
	_, reps = verifyAll(t, ri, VerifyOptions{})
	want := []RoomReport{{Room: "ops", Status: RoomDiffers, Diffs: []Diff{{Key: "live:room:{ops}", Field: "name", Log: "ops", Live: "renamed"}}}}
	if diff := cmp.Diff(want, reps); diff != "" {
		t.Errorf("verify after corruption (-want,+got):\n%s", diff)
	}
	if _, err := r.Clean(ctx, "inv:"); err != nil {
		t.Fatal(err)
	}
	if left := keysUnder(t, rdb, "inv:"); len(left) != 0 {
		t.Errorf("left after clean: %v", left)
	}
	if left := keysUnder(t, rdb, "live:replay:"); len(left) != 0 {
		t.Errorf("scratch keys left behind: %v", left)
	}
}
