package workers

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/roomstream/roomstream/schemas"
)

func progressOf(w who, room, upload string, n int64) schemas.FileUploadProgressPayload {
	return schemas.FileUploadProgressPayload{FileID: "f-" + upload, UploadID: upload, FileName: "a.bin", RoomID: room,
		BytesUploaded: n, TotalBytes: 1000, Percentage: float64(n) / 10}
}

// A progress report skips its room's checks only while the room applied
// nothing but progress reports since the worker saw them pass: an event
// another worker applied (another applier, without this one's views)
// makes the room check everything again.
func TestProgressViewsFollowTheRoom(t *testing.T) {
	h := newHarness(t)
	h.apply(h.env(alice, schemas.EventJoinRoom, "r1", nil, false))
	h.apply(h.env(bob, schemas.EventJoinRoom, "r1", nil, false))
	for n := int64(1); n <= 3; n++ {
		if out := h.apply(h.env(alice, schemas.EventFileUploadProgress, "r1", progressOf(alice, "r1", "u1", n), false)); out.Status != "ok" {
			t.Fatalf("progress %d: %+v", n, out)
		}
	}
	if v := h.a.views.version("r1", "alice", "u1"); v == "" {
		t.Fatal("no view of r1 after alice's reports")
	}
	// Another worker (no views) removes alice's upload from under the
	// view: bob locks the room.
	other := NewApplier(h.a.c, h.a.lockGrace, h.a.emptyRoomTTL, h.a.now)
	if out, err := other.Apply(h.ctx, 0, 1, h.env(bob, schemas.EventLockRoom, "r1", schemas.LockRoomPayload{RoomID: "r1"}, false)); err != nil || out.Status != "ok" {
		t.Fatalf("lock by the other worker: %+v %v", out, err)
	}
	if out := h.apply(h.env(alice, schemas.EventFileUploadProgress, "r1", progressOf(alice, "r1", "u1", 4), false)); out.Status != string(schemas.CodeRoomLocked) {
		t.Fatalf("progress in a room another worker locked: %+v, want room_locked", out)
	}
	// The same worker's own events of other kinds drop the view.
	h.apply(h.env(bob, schemas.EventUnlockRoom, "r1", schemas.UnlockRoomPayload{RoomID: "r1"}, false))
	if out := h.apply(h.env(alice, schemas.EventFileUploadProgress, "r1", progressOf(alice, "r1", "u1", 5), false)); out.Status != "ok" {
		t.Fatalf("progress after the unlock: %+v", out)
	}
	h.apply(h.env(alice, schemas.EventLeaveRoom, "r1", schemas.LeaveRoomPayload{RoomID: "r1"}, false))
	if v := h.a.views.version("r1", "alice", "u1"); v != "" {
		t.Errorf("view of r1 kept after a leave: %q", v)
	}
	if out := h.apply(h.env(alice, schemas.EventFileUploadProgress, "r1", progressOf(alice, "r1", "u1", 6), false)); out.Status != string(schemas.CodeNotMember) {
		t.Fatalf("progress after leaving: %+v, want not_member", out)
	}
}

// Views change no outcome and no state: a random mix of joins, leaves,
// locks, uploads and progress reports (many of them refused) applied
// with views and without gives the same outcomes, deliveries and rooms.
func TestProgressViewsAgreeWithFullChecks(t *testing.T) {
	carol := who{"carol", "Carol", "sC", "c1"}
	users := []who{alice, bob, carol, alice2}
	rooms := []string{"r1", "r2"}
	build := func(h *harness, rng *rand.Rand) []string {
		var outs []string
		for i := 0; i < 400; i++ {
			w, room := users[rng.IntN(len(users))], rooms[rng.IntN(len(rooms))]
			upload := fmt.Sprintf("u-%s-%d", w.user, rng.IntN(2))
			var out Outcome
			switch k := rng.IntN(20); {
			case k == 0:
				out = h.apply(h.env(w, schemas.EventJoinRoom, room, nil, false))
			case k == 1:
				out = h.apply(h.env(w, schemas.EventLeaveRoom, room, schemas.LeaveRoomPayload{RoomID: room}, false))
			case k == 2:
				out = h.apply(h.env(w, schemas.EventLockRoom, room, schemas.LockRoomPayload{RoomID: room}, false))
			case k == 3:
				out = h.apply(h.env(w, schemas.EventUnlockRoom, room, schemas.UnlockRoomPayload{RoomID: room}, false))
			case k == 4:
				out = h.apply(h.env(w, schemas.EventFileUploadCompleted, room, schemas.FileUploadCompletedPayload{
					FileID: "f-" + upload, FileName: "a.bin", RoomID: room, Size: 1000, UploadID: upload}, false))
			case k == 5:
				// another user's upload id: forbidden when it exists
				o := users[rng.IntN(len(users))]
				out = h.apply(h.env(w, schemas.EventFileUploadProgress, room, progressOf(w, room, fmt.Sprintf("u-%s-0", o.user), int64(i)), false))
			default:
				out = h.apply(h.env(w, schemas.EventFileUploadProgress, room, progressOf(w, room, upload, int64(i)), false))
			}
			outs = append(outs, out.Status)
		}
		return outs
	}
	with, without := newHarness(t), newHarness(t)
	without.a.views = nil
	gotWith := build(with, rand.New(rand.NewPCG(1, 2)))
	gotWithout := build(without, rand.New(rand.NewPCG(1, 2)))
	if diff := cmp.Diff(gotWithout, gotWith); diff != "" {
		t.Fatalf("outcomes (-without views,+with):\n%s", diff)
	}
	if diff := cmp.Diff(events(without.drain("c1", "c2")), events(with.drain("c1", "c2"))); diff != "" {
		t.Errorf("deliveries (-without views,+with):\n%s", diff)
	}
	for _, room := range rooms {
		for _, key := range []string{"t:room:{" + room + "}", "t:room:{" + room + "}:users", "t:room:{" + room + "}:uploads", "t:room:{" + room + "}:files"} {
			typ := with.rdb.Type(with.ctx, key).Val()
			var w, wo any
			switch typ {
			case "hash":
				// activeUploads is a JSON object built from a hash
				// whose order Redis does not keep: compared decoded.
				canon := func(m map[string]string) map[string]any {
					out := map[string]any{}
					for k, v := range m {
						var j any
						if k == "activeUploads" && json.Unmarshal([]byte(v), &j) == nil {
							out[k] = j
						} else {
							out[k] = v
						}
					}
					return out
				}
				w, wo = canon(with.rdb.HGetAll(with.ctx, key).Val()), canon(without.rdb.HGetAll(without.ctx, key).Val())
			case "set":
				a, b := with.rdb.SMembers(with.ctx, key).Val(), without.rdb.SMembers(without.ctx, key).Val()
				slices.Sort(a)
				slices.Sort(b)
				w, wo = a, b
			}
			if diff := cmp.Diff(wo, w); diff != "" {
				t.Errorf("%s (-without views,+with):\n%s", key, diff)
			}
		}
	}
	ok := 0
	for _, s := range gotWith {
		if s == "ok" {
			ok++
		}
	}
	if ok < 100 {
		t.Errorf("only %d of 400 events applied: the mix tests little", ok)
	}
}

// Reports under their room's view set the progress hash's TTL once a
// minute (of entry time), not every time; the hash keeps its TTL.
func TestProgressHashTTLUnderAView(t *testing.T) {
	h := newHarness(t)
	h.apply(h.env(alice, schemas.EventJoinRoom, "r1", nil, false))
	expires := func() int64 {
		for _, line := range strings.Split(h.rdb.Info(h.ctx, "commandstats").Val(), "\n") {
			if strings.HasPrefix(line, "cmdstat_expire:") {
				n, _ := strconv.ParseInt(strings.TrimPrefix(strings.Split(line, ",")[0], "cmdstat_expire:calls="), 10, 64)
				return n
			}
		}
		return 0
	}
	before := expires()
	for n := int64(1); n <= 20; n++ { // the harness's clock moves a second per entry
		if out := h.apply(h.env(alice, schemas.EventFileUploadProgress, "r1", progressOf(alice, "r1", "u1", n), false)); out.Status != "ok" {
			t.Fatalf("progress %d: %+v", n, out)
		}
		if ttl := h.rdb.TTL(h.ctx, "t:upload:{u1}:progress").Val(); ttl < 23*time.Hour {
			t.Fatalf("after report %d the progress hash's TTL is %s", n, ttl)
		}
	}
	if n := expires() - before; n != 1 {
		t.Errorf("20 reports within a minute set the TTL %d times, want once", n)
	}
	// A minute of entry time later, once more.
	h.now = h.now.Add(time.Minute)
	h.apply(h.env(alice, schemas.EventFileUploadProgress, "r1", progressOf(alice, "r1", "u1", 21), false))
	if n := expires() - before; n != 2 {
		t.Errorf("a report a minute later: %d TTLs set, want 2", n)
	}
}
