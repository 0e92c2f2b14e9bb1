package workers

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/roomstream/roomstream/streams"
)

// TestLeaseValidOnTheWorkersClock checks that a lease renewed on the
// worker's clock is judged on that clock: with a clock behind real time,
// a lease valid on it is valid (it was compared with time.Now).
func TestLeaseValidOnTheWorkersClock(t *testing.T) {
	at := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	w := New(Config{LeaseTTL: 5 * time.Second}, streams.New(nil, streams.Config{}),
		slog.New(slog.NewTextHandler(io.Discard, nil)), &Options{Now: func() time.Time { return at }})
	run := &partitionRun{}
	run.validUntil.Store(at.Add(w.cfg.LeaseTTL).UnixMilli())
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if !w.leaseValid(ctx, run) {
		t.Fatal("a lease valid on the worker's clock was taken for expired")
	}
}
