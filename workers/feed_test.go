package workers

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// feedHarness is a harness whose applier writes the feed in mode.
func feedHarness(t *testing.T, mode string) *harness {
	t.Helper()
	h := newHarness(t)
	h.a = h.a.WithFeed(FeedConfig{EventsFeed: mode, EventsFeedRetention: time.Hour, EventsFeedMaxLen: 1000})
	return h
}

// feed returns the events in partition 0's feed (the harness applies
// everything as partition 0), as type@room, and the entries themselves.
func (h *harness) feed() ([]string, []redis.XMessage) {
	h.t.Helper()
	msgs, err := h.rdb.XRange(h.ctx, h.c.Keys.Feed(0), "-", "+").Result()
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		out = append(out, m.Values["type"].(string)+"@"+m.Values["roomId"].(string))
	}
	return out, msgs
}

// TestFeedHoldsWhatRoomsHeard: every event a room heard is in the feed,
// in order, with its payload as the room's members got it, the inbound
// entry that produced it and that entry's time; what only the sender
// hears (acks, snapshots) is not.
func TestFeedHoldsWhatRoomsHeard(t *testing.T) {
	h := feedHarness(t, FeedAll)
	join := h.env(alice, schemas.EventJoinRoom, "r1", nil, true)
	h.apply(join)
	h.apply(h.env(bob, schemas.EventJoinRoom, "r1", nil, false))
	h.apply(h.env(alice, schemas.EventLockRoom, "r1", schemas.LockRoomPayload{RoomID: "r1", Reason: "review"}, false))
	h.apply(h.env(alice, schemas.EventFileUploadStarted, "r1", map[string]any{"fileId": "f1", "fileName": "a.txt", "roomId": "r1", "size": 10}, false))
	h.apply(h.env(alice, schemas.EventFileUploadProgress, "r1", map[string]any{"fileId": "f1", "uploadId": "f1", "fileName": "a.txt", "roomId": "r1",
		"bytesUploaded": 5, "totalBytes": 10, "percentage": 50}, false))
	h.apply(h.env(alice, schemas.EventFileUploadCompleted, "r1", map[string]any{"fileId": "f1", "fileName": "a.txt", "roomId": "r1", "size": 10}, false))
	h.apply(h.env(alice, schemas.EventUnlockRoom, "r1", schemas.UnlockRoomPayload{RoomID: "r1"}, false))
	h.apply(h.apiEnv(schemas.CmdPublish, "r1", "", "app:note", map[string]any{"n": 1}))
	h.apply(h.env(bob, schemas.EventLeaveRoom, "r1", schemas.LeaveRoomPayload{RoomID: "r1"}, false))
	heard := h.drain("c1")
	got, msgs := h.feed()
	want := []string{"user-joined@r1", "user-joined@r1", "room-locked@r1", "file-upload-started@r1", "file-upload-progress@r1",
		"file-added@r1", "room-unlocked@r1", "app:note@r1", "user-left@r1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("feed (-want,+got):\n%s", diff)
	}
	// The payloads are the ones alice's connector delivered, in order.
	var bodies []string
	for _, g := range heard {
		if g.Event != "ack" && g.Event != "room-state" {
			b, _ := json.Marshal(g.Body)
			bodies = append(bodies, g.Event+" "+string(b))
		}
	}
	var fed []string
	for _, m := range msgs {
		var body map[string]any
		if err := json.Unmarshal([]byte(m.Values["data"].(string)), &body); err != nil {
			t.Fatalf("feed entry %s: data %q: %v", m.ID, m.Values["data"], err)
		}
		b, _ := json.Marshal(body)
		fed = append(fed, m.Values["type"].(string)+" "+string(b))
	}
	if diff := cmp.Diff(bodies, fed); diff != "" {
		t.Errorf("feed payloads differ from what the room heard (-heard,+fed):\n%s", diff)
	}
	first := msgs[0].Values
	if diff := cmp.Diff(map[string]any{"v": streams.FeedVersion, "type": "user-joined", "roomId": "r1", "entryId": join.ID,
		"at": streams.ISOTime(join.At), "data": first["data"]}, first); diff != "" {
		t.Errorf("first feed entry (-want,+got):\n%s", diff)
	}
	ev, err := streams.DecodeFeedEvent(0, msgs[0].ID, msgs[0].Values)
	if err != nil || ev.EntryID != join.ID || ev.EventID() != "evt_0_"+msgs[0].ID {
		t.Errorf("decoded %+v, %v", ev, err)
	}
}

// TestFeedSkipsRefusals: refused events are outcomes, not events a room
// heard: none reaches the feed.
func TestFeedSkipsRefusals(t *testing.T) {
	h := feedHarness(t, FeedAll)
	h.apply(h.env(alice, schemas.EventJoinRoom, "r1", nil, false))
	h.apply(h.env(bob, schemas.EventJoinRoom, "r1", nil, false))
	h.apply(h.env(alice, schemas.EventLockRoom, "r1", schemas.LockRoomPayload{RoomID: "r1"}, false))
	before, _ := h.feed()
	for _, e := range []*streams.Envelope{
		h.env(bob, schemas.EventLockRoom, "r1", schemas.LockRoomPayload{RoomID: "r1"}, false),     // room_locked
		h.env(bob, schemas.EventUnlockRoom, "r1", schemas.UnlockRoomPayload{RoomID: "r1"}, false), // not_lock_holder
		h.env(bob, schemas.EventLeaveRoom, "r2", schemas.LeaveRoomPayload{RoomID: "r2"}, false),   // not_member
		h.env(bob, schemas.EventFileUploadProgress, "r1", map[string]any{"fileId": "f9", "uploadId": "f9", "fileName": "x", "roomId": "r1",
			"bytesUploaded": 1, "totalBytes": 2, "percentage": 50}, false), // upload_not_started
	} {
		if out := h.apply(e); out.Status == "ok" || out.Status == "noop" {
			t.Fatalf("%s: status %q, want a refusal", e.Type, out.Status)
		}
	}
	after, _ := h.feed()
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("refusals reached the feed (-before,+after):\n%s", diff)
	}
}

// TestFeedOnceUnderRepeatedApply: an entry applied again (its worker
// crashed after writing, or the write's reply was lost) re-sends its
// events to the connectors, which drop them; the feed holds them once. So
// does a late write of an entry older than what the room fed since (a
// worker that lost its lease), and a write whose script had to be loaded
// first.
func TestFeedOnceUnderRepeatedApply(t *testing.T) {
	h := feedHarness(t, FeedAll)
	j := h.env(alice, schemas.EventJoinRoom, "r1", nil, false)
	h.apply(j)
	if out := h.apply(j); out.Status != "ok" || len(out.Events) != 1 {
		t.Fatalf("redelivered join: %+v", out)
	}
	if got, _ := h.feed(); !cmp.Equal(got, []string{"user-joined@r1"}) {
		t.Fatalf("feed after a redelivered entry: %v", got)
	}

	// The scripts of a batch ran, its writes were lost (a crash): applied
	// again, its entries write once.
	l1 := h.env(alice, schemas.EventLockRoom, "r1", schemas.LockRoomPayload{RoomID: "r1"}, false)
	j2 := h.env(bob, schemas.EventJoinRoom, "r2", nil, false)
	res := h.a.ApplyBatch(h.ctx, batchOf(0, 1, l1, j2), BatchOptions{DeferLastWrites: true})
	if res.Deferred == nil {
		t.Fatalf("no deferred writes: %+v", res)
	}
	for range 2 {
		// Written twice: a reply lost after the writes went through.
		if err := res.Deferred.Write(h.ctx); err != nil {
			t.Fatal(err)
		}
	}
	res = h.a.ApplyBatch(h.ctx, batchOf(0, 1, l1, j2), BatchOptions{})
	if res.Stopped != nil || !res.Applied[0] || !res.Applied[1] {
		t.Fatalf("batch applied again: %+v", res)
	}
	want := []string{"user-joined@r1", "room-locked@r1", "user-joined@r2"}
	if got, _ := h.feed(); !cmp.Equal(got, want) {
		t.Fatalf("feed after a batch applied twice (-want,+got):\n%s", cmp.Diff(want, got))
	}

	// A late write of r1's join, after the room's lock was fed.
	late := newEffects(0, j)
	late.feed, late.outcome.Status = feedAll, "ok"
	late.keep(schemas.EventUserJoined, []byte(`{"late":true}`))
	if err := h.a.commit(h.ctx, []*effects{late}); err != nil {
		t.Fatal(err)
	}
	// Redis lost its scripts (a restart): the write loads the feed's and
	// goes through once.
	if err := h.rdb.ScriptFlush(h.ctx).Err(); err != nil {
		t.Fatal(err)
	}
	h.apply(h.env(alice, schemas.EventUnlockRoom, "r1", schemas.UnlockRoomPayload{RoomID: "r1"}, false))
	want = append(want, "room-unlocked@r1")
	if got, _ := h.feed(); !cmp.Equal(got, want) {
		t.Fatalf("feed (-want,+got):\n%s", cmp.Diff(want, got))
	}
	if ttl := h.rdb.TTL(h.ctx, h.c.Keys.FeedFed(0, "r1")).Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("the room's feed marker lives %s, want the retention (1h)", ttl)
	}
}

// TestFeedModes: with the feed off nothing is written (not a key), and
// the effects keep nothing; changes leaves upload progress out, and a
// progress report then costs the feed no command.
func TestFeedModes(t *testing.T) {
	scenario := func(h *harness) {
		h.apply(h.env(alice, schemas.EventJoinRoom, "r1", nil, false))
		h.apply(h.env(alice, schemas.EventFileUploadStarted, "r1", map[string]any{"fileId": "f1", "fileName": "a.txt", "roomId": "r1", "size": 10}, false))
		h.apply(h.env(alice, schemas.EventFileUploadProgress, "r1", map[string]any{"fileId": "f1", "uploadId": "f1", "fileName": "a.txt", "roomId": "r1",
			"bytesUploaded": 5, "totalBytes": 10, "percentage": 50}, false))
	}
	off := newHarness(t)
	off.a = off.a.WithFeed(FeedConfig{EventsFeed: FeedOff, EventsFeedRetention: time.Hour, EventsFeedMaxLen: 1000})
	scenario(off)
	if keys := off.rdb.Keys(off.ctx, "t:feed*").Val(); len(keys) != 0 {
		t.Errorf("feed off wrote %v", keys)
	}
	e := newEffects(0, off.env(alice, schemas.EventFileUploadProgress, "r1", nil, false))
	e.feed = off.a.feedMode()
	body := []byte(`{}`)
	if n := testing.AllocsPerRun(100, func() { e.keep(schemas.EventFileUploadProgress, body) }); n != 0 || e.fed != nil {
		t.Errorf("feed off: keeping an event allocates %v times, keeps %v", n, e.fed)
	}

	changes := feedHarness(t, FeedChanges)
	scenario(changes)
	if got, _ := changes.feed(); !cmp.Equal(got, []string{"user-joined@r1", "file-upload-started@r1"}) {
		t.Errorf("changes feed: %v", got)
	}
	p := newEffects(0, changes.env(alice, schemas.EventFileUploadProgress, "r1", nil, false))
	p.feed, p.outcome.Status = changes.a.feedMode(), "ok"
	p.keep(schemas.EventFileUploadProgress, body)
	if cmds := changes.a.queueFeed(context.Background(), changes.rdb.Pipeline(), []*effects{p}, changes.now); len(cmds) != 0 {
		t.Errorf("changes feed: a progress report queues %d commands", len(cmds))
	}
}

// TestFeedConfig names the variable at fault.
func TestFeedConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  FeedConfig
		want string
	}{
		{FeedConfig{EventsFeed: "some", EventsFeedRetention: time.Hour, EventsFeedMaxLen: 1000}, "ROOMSTREAM_EVENTS_FEED "},
		{FeedConfig{EventsFeed: FeedAll, EventsFeedRetention: time.Second, EventsFeedMaxLen: 1000}, "ROOMSTREAM_EVENTS_FEED_RETENTION"},
		{FeedConfig{EventsFeed: FeedAll, EventsFeedRetention: time.Hour, EventsFeedMaxLen: 10}, "ROOMSTREAM_EVENTS_FEED_MAXLEN"},
		{FeedConfig{EventsFeed: FeedChanges, EventsFeedRetention: time.Hour, EventsFeedMaxLen: 1000}, ""},
		{FeedConfig{}, ""},
	} {
		err := tc.cfg.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}
