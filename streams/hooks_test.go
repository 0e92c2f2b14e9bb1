package streams

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/roomstream/roomstream/infra/testredis"
)

// TestWebhookDeadLetterAndRequeue: an event that could not be delivered
// goes to its partition's webhook dead letters under its feed id; a
// requeued copy is read by the hooks beside the feed and decodes to the
// same event (the same webhook id); dead again, it is a letter of the
// same event.
func TestWebhookDeadLetterAndRequeue(t *testing.T) {
	rdb := testredis.Start(t, nil).Client()
	ctx := context.Background()
	c := New(rdb, Config{Partitions: 2, KeyPrefix: "h:", InboundRetention: time.Hour})
	if err := c.EnsureHooksGroup(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := c.EnsureHooksGroup(ctx, 1); err != nil {
		t.Fatalf("a second time: %v", err)
	}
	entry := FeedEntry{EntryID: "5-0", RoomID: "r1", At: "2026-01-02T03:04:05.000Z", Events: []FeedItem{{Type: "room-locked", Data: []byte(`{"roomId":"r1"}`)}}}
	if err := c.FeedAppend(ctx, rdb, 1, []FeedEntry{entry}, "0-0", 1000, time.Hour).Err(); err != nil {
		if err = c.LoadFeedScript(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.FeedAppend(ctx, rdb, 1, []FeedEntry{entry}, "0-0", 1000, time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
	}
	r := &HooksRead{Consumer: "p1", FeedID: ">", RedoID: ">", Count: 10}
	if err := c.ReadHooks(ctx, 1, r); err != nil || len(r.Feed) != 1 || len(r.Redo) != 0 {
		t.Fatalf("read: %+v %v", r, err)
	}
	msg := r.Feed[0]
	ev, err := DecodeFeedEvent(1, msg.ID, msg.Values)
	if err != nil || ev.Type != "room-locked" || ev.RoomID != "r1" || ev.EntryID != "5-0" || string(ev.Data) != `{"roomId":"r1"}` {
		t.Fatalf("event %+v %v", ev, err)
	}
	// Pending entries are read again from "0" by the partition's next
	// reader (the same consumer name).
	again := &HooksRead{Consumer: "p1", FeedID: "0", RedoID: "0", Count: 10}
	if err := c.ReadHooks(ctx, 1, again); err != nil || len(again.Feed) != 1 || again.Feed[0].ID != msg.ID {
		t.Fatalf("pending read: %+v %v", again, err)
	}
	if err := c.WebhookDeadLetter(ctx, 1, msg, false, errors.New("HTTP 500"), 8, time.Now()); err != nil {
		t.Fatal(err)
	}
	if n := rdb.XPending(ctx, c.Keys.Feed(1), HooksGroup).Val().Count; n != 0 {
		t.Errorf("dead-lettered event still pending (%d)", n)
	}
	dead, err := c.WebhookDeadLetters(ctx, -1)
	if err != nil || len(dead) != 1 || dead[0].Source != msg.ID || dead[0].Error != "HTTP 500" || dead[0].Attempts != 8 || dead[0].Values["type"] != "room-locked" {
		t.Fatalf("dead letters %+v %v", dead, err)
	}
	if inbound, _ := c.DeadLetters(ctx, -1); len(inbound) != 0 {
		t.Errorf("a webhook letter among the inbound dead letters: %+v", inbound)
	}
	copyID, err := c.RequeueWebhook(ctx, 1, dead[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RequeueWebhook(ctx, 1, dead[0].ID); !errors.Is(err, ErrAlreadyRequeued) {
		t.Errorf("second requeue: %v", err)
	}
	if err := c.ReadHooks(ctx, 1, r); err != nil || len(r.Feed) != 0 || len(r.Redo) != 1 || r.Redo[0].ID != copyID {
		t.Fatalf("read after requeue: %+v %v", r, err)
	}
	redo, err := RedoEvent(1, r.Redo[0])
	if err != nil || redo.EventID() != ev.EventID() || redo.Type != ev.Type || string(redo.Data) != string(ev.Data) {
		t.Fatalf("requeued event %+v (%v), want the event %+v", redo, err, ev)
	}
	// Dead again: a new letter of the same event; the copy is gone.
	if err := c.WebhookDeadLetter(ctx, 1, r.Redo[0], true, errors.New("timeout"), 8, time.Now()); err != nil {
		t.Fatal(err)
	}
	dead, _ = c.WebhookDeadLetters(ctx, 1)
	if len(dead) != 2 || dead[1].Source != msg.ID || dead[1].Values["requeued_from"] != nil || dead[0].Requeued != copyID {
		t.Errorf("after the copy failed too: %+v", dead)
	}
	if n := rdb.XLen(ctx, c.Keys.WebhookRedo(1)).Val(); n != 0 {
		t.Errorf("requeued copy left in the stream (%d)", n)
	}
	backlog, err := c.HooksBacklogs(ctx)
	if err != nil || len(backlog) != 2 || backlog[0] != 0 || backlog[1] != 0 {
		t.Errorf("backlogs %v %v", backlog, err)
	}
}
