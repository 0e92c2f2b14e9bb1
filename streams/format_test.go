package streams

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/infra/testredis"
)

// TestEnvelopeFormats: an envelope written in the previous format and in
// the current one reads back the same, to the microsecond; an entry of
// the previous release (milliseconds only) reads with its milliseconds;
// fields no format knows are ignored; a newer format is refused (its
// fields may mean something this build cannot know).
func TestEnvelopeFormats(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6_007_008, time.UTC)
	sent := &Envelope{Type: "file-upload-progress", RoomID: "r1", UserID: "u1", UserName: "Ann", SessionID: "ss", SocketID: "sk",
		ConnectorID: "c1", AckID: 7, HasAck: true, Origin: "o1", Seq: 42, Data: []byte(`{"roomId":"r1"}`), At: at}
	want := *sent
	want.ID, want.At, want.Accepted = "1-0", at.Truncate(time.Millisecond), at.Truncate(time.Microsecond)
	for _, format := range []int{FormatPrevious, FormatCurrent} {
		got, err := DecodeEnvelope("1-0", asRead(sent.ValuesIn(format)))
		if err != nil {
			t.Fatalf("format %d: %v", format, err)
		}
		want.Version = format
		if diff := cmp.Diff(&want, got); diff != "" {
			t.Errorf("format %d (-want,+got):\n%s", format, diff)
		}
	}

	// What the previous release writes: "v" 1 and "at" in ms.
	old := asRead(sent.ValuesIn(FormatPrevious))
	delete(old, "t")
	old["at"] = strconv.FormatInt(at.UnixMilli(), 10)
	old["later"] = "a field of a format to come"
	got, err := DecodeEnvelope("1-0", old)
	if err != nil {
		t.Fatal(err)
	}
	if !got.At.Equal(at.Truncate(time.Millisecond)) || !got.Accepted.Equal(got.At) || got.Version != 1 {
		t.Errorf("an entry of the previous release read as at %s, accepted %s, format %d", got.At, got.Accepted, got.Version)
	}

	newer := asRead(sent.Values())
	newer["v"] = strconv.Itoa(FormatCurrent + 1)
	if _, err := DecodeEnvelope("1-0", newer); !errors.Is(err, ErrBadEnvelope) {
		t.Errorf("an entry of a newer format: %v, want ErrBadEnvelope", err)
	}
}

// TestPreviousFormatIsWhatThePreviousReleaseReads pins the fields the
// previous release reads in an envelope: "v" no higher than 1 (it
// dead-letters the entry otherwise) and "at" in milliseconds.
func TestPreviousFormatIsWhatThePreviousReleaseReads(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6_007_008, time.UTC)
	v := asRead((&Envelope{Type: "join-room", RoomID: "r1", At: at}).ValuesIn(FormatPrevious))
	if v["v"] != "1" || v["at"] != strconv.FormatInt(at.UnixMilli(), 10) {
		t.Errorf("previous format wrote v=%v at=%v; the previous release reads v=1 and at in ms (%d)", v["v"], v["at"], at.UnixMilli())
	}
}

// TestOutboundFormats: an outbound entry without "v" is format 1 (the
// previous release's), one with it carries it; the accept time survives;
// a newer format is refused.
func TestOutboundFormats(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6_007_000, time.UTC)
	o := &Outbound{Partition: 3, Source: "5-1", Room: "r1", Accepted: at,
		Messages: []Message{{Event: "user-joined", Body: []byte(`{}`), Room: "r1"}}}
	for _, format := range []int{FormatPrevious, FormatCurrent} {
		v := asRead(o.ValuesIn(format))
		if _, ok := v["v"]; ok != (format > 1) {
			t.Errorf("format %d: field v present: %v", format, ok)
		}
		got, err := DecodeOutbound("9-0", v)
		if err != nil {
			t.Fatalf("format %d: %v", format, err)
		}
		if got.Version != format || !got.Accepted.Equal(at) {
			t.Errorf("format %d read as format %d, accepted %s", format, got.Version, got.Accepted)
		}
	}
	newer := asRead(o.Values())
	newer["v"] = strconv.Itoa(FormatCurrent + 1)
	if _, err := DecodeOutbound("9-0", newer); err == nil {
		t.Error("an outbound entry of a newer format was read")
	}
}

func TestPickFormat(t *testing.T) {
	for _, tc := range []struct {
		name  string
		procs []registered
		want  Formats
	}{
		{"nobody else", nil, Formats{Write: 3}},
		{"all current", []registered{{"connector c1", 3}, {"worker w1", 3}, {"worker w2", 4}}, Formats{Write: 3}},
		{"one of the previous release", []registered{{"connector c1", 3}, {"worker w1", 2}}, Formats{Write: 2, Oldest: "worker w1"}},
		{"two releases behind", []registered{{"connector c1", 1}, {"worker w1", 3}}, Formats{Write: 3, TooOld: "connector c1"}},
	} {
		if diff := cmp.Diff(tc.want, pickFormat(tc.procs, 2, 3)); diff != "" {
			t.Errorf("%s (-want,+got):\n%s", tc.name, diff)
		}
	}
}

// TestRefreshFormat: the format written follows the registrations of
// the live processes, including those of the previous release, which
// register no format.
func TestRefreshFormat(t *testing.T) {
	ctx := context.Background()
	rdb := testredis.Start(t, nil).Client()
	c := New(rdb, Config{Partitions: 4, KeyPrefix: "t:"})
	if c.WriteFormat() != FormatPrevious {
		t.Fatalf("before looking, a client writes format %d, want the previous one", c.WriteFormat())
	}
	refresh := func(want int, oldest string) bool {
		t.Helper()
		f, changed, err := c.RefreshFormat(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if f.Write != want || f.Oldest != oldest || c.WriteFormat() != want {
			t.Errorf("formats %+v, writing %d; want %d (oldest %q)", f, c.WriteFormat(), want, oldest)
		}
		return changed
	}
	if _, err := c.Heartbeat(ctx, "c1", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Beat(ctx, "w1", time.Now(), time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	if !refresh(FormatCurrent, "") || refresh(FormatCurrent, "") {
		t.Error("changed should say whether the formats differ from the last look")
	}

	// A connector of the previous release: its heartbeat holds the time
	// alone.
	rdb.Set(ctx, c.Keys.Connector("old"), time.Now().UTC().Format(time.RFC3339Nano), time.Minute)
	rdb.SAdd(ctx, c.Keys.Connectors(), "old")
	refresh(1, "connector old")
	rdb.Del(ctx, c.Keys.Connector("old")) // gone: its heartbeat expired
	refresh(FormatCurrent, "")

	// A worker of the previous release: in the workers set, no worker key.
	rdb.ZAdd(ctx, c.Keys.Workers(), redis.Z{Score: float64(time.Now().UnixMilli()), Member: "w-old"})
	refresh(1, "worker w-old")
	if err := c.WorkerGone(ctx, "w-old"); err != nil {
		t.Fatal(err)
	}
	refresh(FormatCurrent, "")
	if err := c.WorkerGone(ctx, "w1"); err != nil {
		t.Fatal(err)
	}
	if n := rdb.Exists(ctx, c.Keys.Worker("w1")).Val(); n != 0 {
		t.Error("a worker that left kept its worker key")
	}
}
