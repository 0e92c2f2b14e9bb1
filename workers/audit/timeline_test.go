package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/roomstream/roomstream/infra/testredis"
	"github.com/roomstream/roomstream/streams"
)

func timeline(t *testing.T, r *Replayer, opts TimelineOptions) []Event {
	t.Helper()
	var evs []Event
	if err := r.Timeline(context.Background(), opts, func(e Event) error {
		evs = append(evs, e)
		return nil
	}); err != nil {
		t.Fatalf("timeline: %v", err)
	}
	return evs
}

// brief is the part of an event a person reads first.
func brief(evs []Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type+" "+e.Who()+" "+e.OutcomeText())
	}
	return out
}

func TestTimelineOfARoom(t *testing.T) {
	rdb := testredis.Start(t, nil).Client()
	lw := startLiveWorker(t, rdb, "live:", 4)
	ids := lw.story()
	r := New(rdb, lw.cfg, &Options{EmptyRoomTTL: time.Hour})

	evs := timeline(t, r, TimelineOptions{Room: "design"})
	want := []string{
		"join-room Alice (alice) applied",
		"join-room Bob (bob) applied",
		"lock-room Alice (alice) applied",
		"lock-room Bob (bob) refused: room_locked",
		"file-upload-started Bob (bob) refused: room_locked",
		"file-upload-started Alice (alice) applied",
		"file-upload-progress Alice (alice) applied",
		"file-upload-completed Alice (alice) applied",
		"file-upload-started Alice (alice) applied",
		"file-upload-failed Alice (alice) applied",
		"unlock-room Bob (bob) refused: not_lock_holder",
		"unlock-room Alice (alice) applied",
		"lock-room Bob (bob) applied",
		"lock-room Alice (alice) dead-lettered",
		"leave-room Bob (bob) applied",
		"lock-expire (server) applied",
	}
	if diff := cmp.Diff(want, brief(evs)); diff != "" {
		t.Fatalf("timeline of design (-want,+got):\n%s", diff)
	}
	byID := map[string]Event{}
	for _, e := range evs {
		byID[e.ID] = e
		if e.Room != "design" || e.Partition != streams.Partition("design", 4) || e.HistoryTrimmed {
			t.Errorf("event %+v", e)
		}
	}
	if e := byID[ids["bob-locks"]]; !strings.Contains(e.Reason, "locked by Alice") {
		t.Errorf("room_locked refusal does not say who holds the lock: %+v", e)
	}
	if e := byID[ids["alice-locks"]]; e.Detail != `reason "review"` || !cmp.Equal(e.Emitted, []string{"room-locked"}) {
		t.Errorf("alice's lock: %+v", e)
	}
	if e := byID[ids["bad"]]; !strings.Contains(e.Reason, "payload") {
		t.Errorf("dead-lettered entry does not say why: %+v", e)
	}
	for _, e := range evs {
		if e.Type == "file-upload-completed" && e.Detail != `file "spec.pdf" (2.0 KiB) added as f1` {
			t.Errorf("upload detail: %q", e.Detail)
		}
		if e.Type == "lock-expire" && (!strings.Contains(e.Detail, "lock holder left") || !cmp.Equal(e.Emitted, []string{"room-unlocked"})) {
			t.Errorf("lock expiry: %+v", e)
		}
	}

	// From Bob's failed unlock on: the outcomes still account for what
	// came before (the lock Alice took).
	since := streams.MustID(ids["bob-unlocks"]).Time()
	late := timeline(t, r, TimelineOptions{Room: "design", Bounds: Bounds{Since: since}})
	if diff := cmp.Diff(want[10:], brief(late)); diff != "" {
		t.Errorf("timeline since bob's unlock (-want,+got):\n%s", diff)
	}
	until := timeline(t, r, TimelineOptions{Room: "design", Bounds: Bounds{Until: since}})
	if diff := cmp.Diff(want[:10], brief(until)); diff != "" {
		t.Errorf("timeline until bob's unlock (-want,+got):\n%s", diff)
	}

	// Every room: all entries, merged across partitions in log order.
	all := timeline(t, r, TimelineOptions{})
	total, _ := r.rdb.XLen(context.Background(), "live:in:{0}").Result()
	for p := 1; p < 4; p++ {
		n, _ := r.rdb.XLen(context.Background(), lw.c.Keys.Inbound(p)).Result()
		total += n
	}
	if int64(len(all)) != total {
		t.Errorf("timeline of every room has %d events, the log %d entries", len(all), total)
	}
	rooms := map[string]bool{}
	for i, e := range all {
		rooms[e.Room] = true
		if i > 0 && !streams.MustID(all[i-1].ID).Less(streams.MustID(e.ID)) {
			t.Errorf("events out of log order: %s then %s", all[i-1].ID, e.ID)
		}
	}
	if len(rooms) != 4 {
		t.Errorf("rooms in the full timeline: %v", rooms)
	}
	if err := r.Timeline(context.Background(), TimelineOptions{Room: "bad room"}, nil); err == nil {
		t.Errorf("a bad room id was accepted")
	}
}

func TestTimelineStopsWhenTheReaderDoes(t *testing.T) {
	rdb := testredis.Start(t, nil).Client()
	lw := startLiveWorker(t, rdb, "live:", 4)
	for i := 0; i < 40; i++ {
		room := fmt.Sprintf("room-%d", i%8)
		lw.send(alice, "join-room", room, map[string]string{"roomId": room})
	}
	lw.settle()
	r := New(rdb, lw.cfg, &Options{EmptyRoomTTL: time.Hour})
	stop := errors.New("reader gone")
	n := 0
	err := r.Timeline(context.Background(), TimelineOptions{}, func(Event) error {
		if n++; n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Errorf("timeline after its reader stopped: %v after %d events", err, n)
	}
	if left := keysUnder(t, rdb, "live:replay:"); len(left) != 0 {
		t.Errorf("scratch keys left behind: %v", left)
	}
}
