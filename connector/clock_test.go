package connector

import (
	"context"
	"testing"
	"time"

	"github.com/roomstream/roomstream/streams"
)

// TestClock checks that the times a connector records come from
// Options.Now.
func TestClock(t *testing.T) {
	at := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	l := startWith(t, harnessOptions{now: func() time.Time { return at }})
	_, sid := l.dialWS(t, "clock-user")
	got, err := l.srv.c.Redis().HGet(context.Background(), l.srv.c.Keys.Socket(sid), "connectedAt").Result()
	if err != nil {
		t.Fatal(err)
	}
	if want := streams.ISOTime(at); got != want {
		t.Errorf("connectedAt %q, want %q (the injected clock)", got, want)
	}
}
