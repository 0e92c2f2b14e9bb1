package streams

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/infra/testredis"
)

func TestDeadLetterAndRequeue(t *testing.T) {
	rdb := testredis.Start(t, nil).Client()
	ctx := context.Background()
	c := New(rdb, Config{Partitions: 2, KeyPrefix: "d:", InboundRetention: time.Hour})
	r := c.Reader(1, "w1")
	if err := r.EnsureGroup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: c.Keys.Inbound(1), Values: []any{"type", "lock-room", "room", "r", "data", "{bad"}}).Err(); err != nil {
		t.Fatal(err)
	}
	msgs, err := readNew(t, c, 1, "w1", 10)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("read: %v %v", msgs, err)
	}
	if err := c.DeadLetter(ctx, 1, msgs[0], errors.New("cannot decode"), 5, time.Now()); err != nil {
		t.Fatal(err)
	}
	if n := rdb.XPending(ctx, c.Keys.Inbound(1), Group).Val().Count; n != 0 {
		t.Errorf("dead-lettered entry still pending (%d)", n)
	}
	dead, err := c.DeadLetters(ctx, -1)
	if err != nil || len(dead) != 1 || dead[0].Source != msgs[0].ID || dead[0].Error != "cannot decode" || dead[0].Attempts != 5 || dead[0].Requeued != "" {
		t.Fatalf("dead letters %+v %v", dead, err)
	}
	copyID, err := c.Requeue(ctx, 1, dead[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	copies, _ := rdb.XRange(ctx, c.Keys.Inbound(1), copyID, copyID).Result()
	if len(copies) != 1 || copies[0].Values["requeued_from"] != msgs[0].ID || copies[0].Values["data"] != "{bad" {
		t.Errorf("requeued copy %+v", copies)
	}
	if _, err := c.Requeue(ctx, 1, dead[0].ID); !errors.Is(err, ErrAlreadyRequeued) {
		t.Errorf("second requeue: %v", err)
	}
	if _, err := c.Requeue(ctx, 1, "1-1"); !errors.Is(err, ErrNoDeadLetter) {
		t.Errorf("requeue of an unknown letter: %v", err)
	}
	dead, _ = c.DeadLetters(ctx, 1)
	if len(dead) != 1 || dead[0].Requeued != copyID {
		t.Errorf("after requeue: %+v", dead)
	}
}
