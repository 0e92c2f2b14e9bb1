package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/roomstream/roomstream/infra/testredis"
	"github.com/roomstream/roomstream/streams"
)

func export(t *testing.T, r *Replayer, opts ExportOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := r.Export(context.Background(), opts, &buf); err != nil {
		t.Fatalf("export: %v", err)
	}
	return buf.Bytes()
}

// lines splits an export into header, entry lines and trailer.
func lines(t *testing.T, b []byte) (Header, []Line, Trailer) {
	t.Helper()
	raw := strings.Split(strings.TrimSpace(string(b)), "\n")
	var h Header
	var tr Trailer
	if err := json.Unmarshal([]byte(raw[0]), &h); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(raw[len(raw)-1]), &tr); err != nil {
		t.Fatal(err)
	}
	var ls []Line
	for _, s := range raw[1 : len(raw)-1] {
		var l Line
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
	}
	return h, ls, tr
}

func TestExportImportRoundTrip(t *testing.T) {
	rdb := testredis.Start(t, nil).Client()
	lw := startLiveWorker(t, rdb, "live:", 4)
	ids := lw.story()
	ctx := context.Background()
	r := New(rdb, lw.cfg, &Options{EmptyRoomTTL: time.Hour})

	out := export(t, r, ExportOptions{})
	h, ls, tr := lines(t, out)
	if h.Format != ExportFormat || h.Partitions != 4 || h.Prefix != "live:" || len(h.Incomplete) != 0 {
		t.Errorf("header: %+v", h)
	}
	if !tr.End || tr.Entries != int64(len(ls)) || len(ls) < 20 {
		t.Errorf("trailer %+v for %d lines", tr, len(ls))
	}
	dead := 0
	for i, l := range ls {
		if i > 0 && !streams.MustID(ls[i-1].ID).Less(streams.MustID(l.ID)) {
			t.Errorf("line %d out of log order", i+2)
		}
		if l.Partition != streams.Partition(l.Fields["room"], 4) || l.Fields["type"] == "" || l.Fields["at"] == "" {
			t.Errorf("line %d: %+v", i+2, l)
		}
		if l.DeadLetter != "" {
			dead++
			if l.ID != ids["bad"] {
				t.Errorf("entry %s marked dead-lettered", l.ID)
			}
		}
	}
	if dead != 1 {
		t.Errorf("%d dead-lettered lines, want 1", dead)
	}

	sum, err := r.Import(ctx, bytes.NewReader(out), "inv:")
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if sum.Entries != int64(len(ls)) || sum.Partitions != 4 {
		t.Errorf("import summary: %+v", sum)
	}
	// The imported log reads like the live one: same timeline, same
	// export, and rebuilding from it matches the live state.
	ri := New(rdb, lw.cfg, &Options{LogPrefix: "inv:", EmptyRoomTTL: time.Hour})
	if diff := cmp.Diff(timeline(t, r, TimelineOptions{}), timeline(t, ri, TimelineOptions{})); diff != "" {
		t.Errorf("timeline of the import (-live,+import):\n%s", diff)
	}
	_, again, _ := lines(t, export(t, ri, ExportOptions{}))
	if diff := cmp.Diff(ls, again); diff != "" {
		t.Errorf("export of the import (-first,+second):\n%s", diff)
	}
	if s, reps := verifyAll(t, ri, VerifyOptions{}); s.Differing != 0 || s.Matching != 4 {
		t.Errorf("verify of the import against the live state: %+v %+v", s, reps)
	}
	// A second import into the same prefix is refused.
	if _, err := r.Import(ctx, bytes.NewReader(out), "inv:"); err == nil || !strings.Contains(err.Error(), "already holds data") {
		t.Errorf("import into a used prefix: %v", err)
	}
	if n, err := r.Clean(ctx, "inv:"); err != nil || n == 0 {
		t.Errorf("clean import: %d, %v", n, err)
	}

	// One room, from a time on.
	since := streams.MustID(ids["bob-unlocks"]).Time()
	h, ls, _ = lines(t, export(t, r, ExportOptions{Room: "design", Bounds: Bounds{Since: since}}))
	if h.Room != "design" || !cmp.Equal(h.Incomplete, []int{streams.Partition("design", 4)}) {
		t.Errorf("header of a partial export: %+v", h)
	}
	if len(ls) != 6 || ls[0].ID != ids["bob-unlocks"] {
		t.Errorf("export since bob's unlock: %d lines, first %+v", len(ls), ls[0])
	}
}

func TestImportRefusesBadInput(t *testing.T) {
	rdb := testredis.Start(t, nil).Client()
	lw := startLiveWorker(t, rdb, "live:", 4)
	lw.send(alice, "join-room", "design", map[string]string{"roomId": "design"})
	lw.send(bob, "join-room", "design", map[string]string{"roomId": "design"})
	lw.settle()
	r := New(rdb, lw.cfg, nil)
	good := string(export(t, r, ExportOptions{}))
	rows := strings.Split(strings.TrimSpace(good), "\n")
	p := streams.Partition("design", 4)
	entry := func(part int, id, room string) string {
		return fmt.Sprintf(`{"partition":%d,"id":%q,"fields":{"v":"1","type":"join-room","room":%q,"at":"1"}}`, part, id, room)
	}
	for _, tc := range []struct {
		name, in, prefix, want string
	}{
		{"empty", "", "x:", "input is empty"},
		{"no header", rows[1] + "\n" + rows[2], "x:", "not the header"},
		{"garbage", rows[0] + "\nnot json\n" + rows[3], "x:", "line 2"},
		{"cut short", rows[0] + "\n" + rows[1] + "\n", "x:", "cut short"},
		{"wrong count", rows[0] + "\n" + rows[1] + "\n" + `{"end":true,"entries":5}`, "x:", "counts 5 entries"},
		{"after end", good + "\n" + rows[1], "x:", "after the end line"},
		{"out of order", rows[0] + "\n" + rows[2] + "\n" + rows[1] + "\n" + rows[3], "x:", "not in log order"},
		{"wrong partition", rows[0] + "\n" + entry((p+1)%4, "5-0", "design") + "\n" + `{"end":true,"entries":1}`, "x:", "belongs to partition"},
		{"bad partition", rows[0] + "\n" + entry(9, "5-0", "design") + "\n" + `{"end":true,"entries":1}`, "x:", "partition missing"},
		{"bad id", rows[0] + "\n" + entry(p, "five", "design") + "\n" + `{"end":true,"entries":1}`, "x:", "bad entry id"},
		{"version", strings.Replace(rows[0], `"version":1`, `"version":7`, 1), "x:", "version 7"},
		{"live prefix", good, "live:", "would cover"},
		{"covering prefix", good, "liv", "would cover"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.Import(context.Background(), strings.NewReader(tc.in), tc.prefix)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("import: %v, want an error about %q", err, tc.want)
			}
			if tc.prefix == "x:" {
				if left := keysUnder(t, rdb, "x:"); len(left) != 0 {
					t.Errorf("a failed import left keys: %v", left)
				}
			}
		})
	}
	if n, _ := rdb.Exists(context.Background(), "live:room:{design}").Result(); n != 1 {
		t.Errorf("the live room is gone")
	}
}
