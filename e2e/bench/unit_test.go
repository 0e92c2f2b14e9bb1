package bench

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	vals := make([]int64, 0, 100_000)
	r := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		v := int64(r.ExpFloat64() * 3000) // µs, long tail
		vals = append(vals, v)
		h.Record(v)
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := vals[int(q*float64(len(vals)))-1]
		got := h.Quantile(q)
		if math.Abs(float64(got-want)) > 0.02*float64(want)+1 {
			t.Errorf("q%.3f = %d, want %d within 2%%", q, got, want)
		}
	}
	if h.Max() != vals[len(vals)-1] || h.Quantile(1) != vals[len(vals)-1] {
		t.Errorf("max %d / q1 %d, want %d", h.Max(), h.Quantile(1), vals[len(vals)-1])
	}
	// A histogram survives its trip between processes.
	var h2 Histogram
	h2.MergeSparse(h.Sparse())
	if h2.Count() != h.Count() || h2.Quantile(0.99) != h.Quantile(0.99) || h2.Max() != h.Max() || h2.Mean() != h.Mean() {
		t.Errorf("sparse round trip changed the histogram")
	}
}

func TestBuckets(t *testing.T) {
	prev := -1
	for v := int64(0); v < 1<<20; v += 1 + v/97 {
		b := bucketOf(v)
		if b < prev {
			t.Fatalf("bucketOf(%d) = %d < %d: not monotonic", v, b, prev)
		}
		if mid := bucketMid(b); math.Abs(float64(mid-v)) > float64(v)/64+1 {
			t.Fatalf("bucketMid(bucketOf(%d)) = %d: more than 1/64 off", v, mid)
		}
		prev = b
	}
	if b := bucketOf(math.MaxInt64); b >= nBuckets {
		t.Fatalf("bucketOf(max) = %d out of range", b)
	}
}

// TestProgressAccounting feeds frames to a connection as the server would
// relay them and checks what is counted.
func TestProgressAccounting(t *testing.T) {
	sh, err := newShard(ShardConfig{URLs: []string{"http://127.0.0.1:1"}, Conns: 20, FirstConn: 40, RoomSize: 10, Run: "bx"})
	if err != nil {
		t.Fatal(err)
	}
	c := sh.conns[12] // room 1 (global room 5), slot 2
	frame := func(sender, seq int) []byte {
		sent := time.Now().Add(-3 * time.Millisecond).UnixMicro()
		return []byte(`42["file-upload-progress",{"fileId":"bx-f1","uploadId":"bx-` + itoa(sender) +
			`","fileName":"a","roomId":"bx-r5","userId":"u","bytesUploaded":1,"totalBytes":2,"percentage":50,"userName":"n","seq":` +
			itoa(seq) + `,"sentAt":` + itoa(int(sent)) + `},"1700000000000-0"]`)
	}
	for _, f := range [][]byte{
		frame(50, 1), frame(50, 2), frame(50, 2), // a duplicate
		frame(51, 1), frame(51, 3), // a gap
		frame(52, 1), // its own echo
		frame(7, 1),  // not of this room
		[]byte(`42["user-joined",{"roomId":"bx-r5"}]`),
		[]byte(`42["error",{"code":"rate_limited"}]`),
	} {
		c.handle(f)
	}
	got := sh.c.load()
	want := Counters{Delivered: 4, Dups: 1, Gaps: 1, Echoes: 1, Other: 2, ErrorEvents: 1}
	if got != want {
		t.Errorf("counters %+v, want %+v", got, want)
	}
	if q := sh.lat.Quantile(0.5); q < 2900 || q > 1_000_000 {
		t.Errorf("latency p50 %dµs, want about 3 ms", q)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestSendFrame(t *testing.T) {
	sh, err := newShard(ShardConfig{URLs: []string{"http://127.0.0.1:1"}, Conns: 10, RoomSize: 10, Run: "bq"})
	if err != nil {
		t.Fatal(err)
	}
	// The frame a connection sends is what the server relays back: the
	// scanner must find the fields in it.
	c := sh.conns[3]
	c.seq = 41
	b := buildProgress(nil, c, 42, 1234)
	if !bytes.HasPrefix(b, progressPrefix) {
		t.Fatalf("frame %s", b)
	}
	up, _ := stringField(b, keyUpload)
	seq, _ := intField(b, keySeq)
	at, _ := intField(b, keySentAt)
	if string(up) != "bq-3" || seq != 42 || at != 1234 {
		t.Errorf("scanned upload %s seq %d sentAt %d from %s", up, seq, at, b)
	}
}

func TestReadProc(t *testing.T) {
	s, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS <= 0 || s.Peak < s.RSS {
		t.Errorf("rss %d peak %d", s.RSS, s.Peak)
	}
	pids, err := FindProcs("bench.test")
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(pids, os.Getpid()) {
		t.Errorf("FindProcs matched itself")
	}
}

func TestChart(t *testing.T) {
	var tl []Point
	for i := range 30 {
		tl = append(tl, Point{T: float64(i + 1), Conns: 100, SentPS: 1000, DeliveredPS: 9000, P50: 2, P99: float64(i + 1), CPUPercent: 30})
	}
	var b bytes.Buffer
	if err := writeChart(&b, "t <&>", tl); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	if !strings.HasPrefix(s, "<svg") || strings.Count(s, "<polyline") != 7 || !strings.Contains(s, "t &lt;&amp;&gt;") {
		t.Errorf("chart:\n%s", s)
	}
}

func TestTable(t *testing.T) {
	rs := &Report{Scenario: "max", Target: "roomstream", Machine: Machine{Cores: 2},
		Best: &StepResult{DeliveredPerSec: 30000, SentPerSec: 3000, LatencyMs: Quantiles{P99: 50}}}
	node := &Report{Scenario: "max", Target: "node", Machine: Machine{Cores: 2},
		Best: &StepResult{DeliveredPerSec: 15000, SentPerSec: 1500, LatencyMs: Quantiles{P99: 80}}}
	var b bytes.Buffer
	printTable(&b, []*Report{rs, node})
	s := b.String()
	for _, want := range []string{"2 cores", "| max | sustained delivered msg/s (p99 < 100 ms, 0 lost) | 30000 | 15000 | 2.00 |",
		"| max | … its p99 (ms) (lower is better) | 50.0 | 80.0 | 0.62 |"} {
		if !strings.Contains(s, want) {
			t.Errorf("table lacks %q:\n%s", want, s)
		}
	}
}

// TestSequenceAccounting feeds one member the events of two senders with
// a gap, a duplicate and a reordering, and checks each is counted as what
// it is: a reordered event is delivered, but counted apart (a step with
// one fails as if it had been lost).
func TestSequenceAccounting(t *testing.T) {
	sh, err := newShard(ShardConfig{URLs: []string{"http://127.0.0.1:1"}, Conns: 10, RoomSize: 10, Run: "bx"})
	if err != nil {
		t.Fatal(err)
	}
	c := sh.conns[0]
	frame := func(sender, seq int) []byte {
		return []byte(`42["file-upload-progress",{"uploadId":"bx-` + itoa(sender) + `","seq":` + itoa(seq) +
			`,"sentAt":` + itoa(int(time.Now().UnixMicro())) + `},"1-0"]`)
	}
	for _, f := range [][]byte{
		frame(1, 1), frame(1, 2), frame(1, 4), // 3 skipped: a gap
		frame(1, 3),              // 3 late: reordered, delivered
		frame(1, 3),              // and then a duplicate
		frame(1, 5),              // in order again
		frame(2, 2), frame(2, 1), // 1 after 2: a gap, then reordered
		frame(2, 2),                // a duplicate
		frame(2, 200), frame(2, 3), // 3 more than 64 below the highest: reordered
	} {
		c.handle(f)
	}
	got := sh.c.load()
	want := Counters{Delivered: 9, Dups: 2, Gaps: 1 + 1 + 197, Reordered: 3}
	if got != want {
		t.Errorf("counters %+v, want %+v", got, want)
	}
	if n := sh.lat.Count(); n != want.Delivered {
		t.Errorf("%d latencies recorded, want one per delivery (%d)", n, want.Delivered)
	}
	res := StepResult{Rate: 1, SentPerSec: 1, Counters: got, LatencyMs: Quantiles{Count: 9}}
	judge(&res, 100, 10)
	if res.Pass || !strings.Contains(res.Why, "3 reordered") || !strings.Contains(res.Why, "2 duplicated") {
		t.Errorf("judged pass %v (%s), want a failure naming the reordered and duplicated deliveries", res.Pass, res.Why)
	}
}

func TestSeqWindow(t *testing.T) {
	var w seqWindow
	for _, tc := range []struct {
		seq     int64
		want    receipt
		skipped int64
	}{
		{1, inOrder, 0}, {3, inOrder, 1}, {2, reordered, 0}, {2, duplicate, 0}, {3, duplicate, 0},
		{70, inOrder, 66}, {7, reordered, 0}, {7, duplicate, 0}, // 63 below the highest: in the window
		{6, reordered, 0}, {6, reordered, 0}, // 64 below: cannot be told from a repeat
		{71, inOrder, 0}, {135, inOrder, 63}, {72, reordered, 0}, {72, duplicate, 0},
	} {
		r, skipped := w.receive(tc.seq)
		if r != tc.want || skipped != tc.skipped {
			t.Errorf("receive(%d) = %d, %d skipped; want %d, %d", tc.seq, r, skipped, tc.want, tc.skipped)
		}
	}
}
