package workers

import (
	"testing"
	"time"

	"github.com/roomstream/roomstream/infra/testredis"
	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// TestOutboundTrimmedToRecoveryWindow: the outbound entries a worker
// writes keep a connector's stream to the recovery window: once the
// window has passed, the next writes remove what is older, up to the
// entries Redis keeps in the stream node it is filling (XADD MINID ~
// removes whole nodes; 10 entries per node here).
func TestOutboundTrimmedToRecoveryWindow(t *testing.T) {
	const window, node = time.Second, 10
	srv := testredis.Start(t, &testredis.Options{Args: []string{"--stream-node-max-entries", "10"}})
	rdb := srv.Client()
	cfg := harnessConfig()
	cfg.RecoveryWindow = window
	h := harnessOn(t, rdb, cfg, time.Now(), time.Now)
	c := h.c
	progress := func(pct int) {
		h.apply(h.env(alice, schemas.EventFileUploadProgress, "r1", schemas.FileUploadProgressPayload{
			FileID: "f1", UploadID: "u1", FileName: "a.pdf", RoomID: "r1", BytesUploaded: int64(pct), TotalBytes: 100, Percentage: float64(pct)}, false))
	}
	h.apply(h.env(alice, schemas.EventJoinRoom, "r1", nil, false))
	h.apply(h.env(alice, schemas.EventFileUploadStarted, "r1", schemas.FileUploadStartedPayload{
		FileID: "f1", FileName: "a.pdf", RoomID: "r1", Size: 100, MimeType: "application/pdf", UploadID: "u1"}, false))
	for pct := 1; pct <= 40; pct++ {
		progress(pct)
	}
	key := c.Keys.Outbound("c1")
	before := rdb.XLen(h.ctx, key).Val()
	if before < 40 {
		t.Fatalf("%d outbound entries written, want at least 40", before)
	}
	// Let every entry so far age past the window (its own clock: entry
	// ids are Redis's time), then write some more.
	last := streams.MustID(rdb.XRevRangeN(h.ctx, key, "+", "-", 1).Val()[0].ID)
	time.Sleep(time.Until(last.Time().Add(window + 50*time.Millisecond)))
	for pct := 41; pct <= 55; pct++ {
		progress(pct)
	}
	msgs := rdb.XRange(h.ctx, key, "-", "+").Val()
	old := 0
	for _, m := range msgs {
		if !last.Less(streams.MustID(m.ID)) {
			old++
		}
	}
	t.Logf("outbound entries past the window: %d of %d left", old, before)
	if old > node {
		t.Errorf("%d of %d entries older than the %s recovery window left in %s, want at most %d (one stream node)", old, before, window, key, node)
	}
	if len(msgs) < 15 {
		t.Errorf("%d entries left, want the 15 within the window", len(msgs))
	}
}
