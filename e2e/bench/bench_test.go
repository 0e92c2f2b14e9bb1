package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/roomstream/roomstream/e2e/harness"
	"github.com/roomstream/roomstream/infra/testredis"
)

// TestMain lets the test binary serve as a generator shard process, as
// `roombench shard` does, so that multi-process runs can be tested.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "shard" {
		if err := ServeShard(context.Background(), os.Stdin, os.Stdout); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	if len(os.Args) > 1 && os.Args[1] == "relay" {
		if err := serveRelay(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const secret = "bench-test-secret-0123456789"

// TestSmoke is the CI smoke of the load generator: 500 connections in
// rooms of 10 against a real connector, worker and redis-server, sending
// for 10 s from two generator processes. Timing figures are printed, not
// asserted: the machine is shared. What is asserted is what must hold at
// any speed: everyone connects and joins, every event reaches every other
// member of its room exactly once.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("smoke runs 10 s of load")
	}
	rs := testredis.Start(t, nil)
	env := harness.Env{"ROOMSTREAM_REDIS_URL": rs.URL(), "ROOMSTREAM_JWT_SECRET": secret, "ROOMSTREAM_LOG_LEVEL": "warn",
		"ROOMSTREAM_MAX_CONNS_PER_IP": "0", "ROOMSTREAM_CONNECT_RATE": "0"}
	w := harness.StartWorker(t, "w1", env)
	c := harness.StartConnector(t, "c1", env)
	waitOwned(t, w)
	p := &Params{Conns: 500, RoomSize: 10, Rate: 200, Duration: 10 * time.Second, RampUp: 2 * time.Second,
		SourceAddrs: 2, Generators: 2, Secret: secret, Join: true, Out: &testLog{t}}
	r, err := Load(context.Background(), "smoke", "roomstream", []string{c.URL()}, nil, p)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	printSummary(&out, r)
	t.Log(out.String())
	if r.Connections.Established != 500 {
		t.Errorf("%d of 500 connections established", r.Connections.Established)
	}
	m := r.Messages
	want := int64(float64(p.Rate)*p.Duration.Seconds()) * 9
	if m.Delivered < want*9/10 {
		t.Errorf("delivered %d, want about %d (rate x duration x 9 other members)", m.Delivered, want)
	}
	if m.Lost != 0 || m.Duplicated != 0 || m.Gaps != 0 || m.Reordered != 0 {
		t.Errorf("lost %d, duplicated %d, gaps %d, reordered %d; want none", m.Lost, m.Duplicated, m.Gaps, m.Reordered)
	}
	if m.ErrorEvents+m.SendErrors+m.Disconnects != 0 {
		t.Errorf("errors: %d events, %d sends, %d disconnects: %v", m.ErrorEvents, m.SendErrors, m.Disconnects, r.Final.Errors)
	}
	if m.Echoes != m.Sent {
		t.Errorf("echoes %d, want one per event sent (%d)", m.Echoes, m.Sent)
	}
	if r.LatencyMs.Count != m.Delivered {
		t.Errorf("latency recorded for %d deliveries, want %d", r.LatencyMs.Count, m.Delivered)
	}
	if len(r.Timeline) < 10 {
		t.Errorf("timeline has %d points, want one per second", len(r.Timeline))
	}
	chart := t.TempDir() + "/smoke.svg"
	if err := WriteChart(chart, "smoke", r.Timeline); err != nil {
		t.Fatal(err)
	}
}

// TestSmokeNode runs the generator against the Node peer (skipped when
// node or npm is missing: it installs the peer's packages).
func TestSmokeNode(t *testing.T) {
	if testing.Short() {
		t.Skip("smoke runs 10 s of load")
	}
	for _, bin := range []string{"node", "npm", "redis-server"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed", bin)
		}
	}
	p := &Params{Conns: 200, RoomSize: 10, Rate: 100, Duration: 5 * time.Second, RampUp: time.Second,
		SourceAddrs: 0, Generators: 1, Secret: secret, Join: true, NodeProcs: 2, PeerDir: "peer", Out: &testLog{t}}
	st, err := StartNode(context.Background(), StackOptions{Secret: secret, NodeProcs: 2, PeerDir: "peer", Log: &testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := Load(context.Background(), "smoke", "node", st.URLs, st.Watch, p)
	if err != nil {
		t.Fatal(err)
	}
	m := r.Messages
	if r.Connections.Established != 200 || m.Delivered == 0 || m.Lost != 0 || m.Duplicated != 0 {
		var out bytes.Buffer
		printSummary(&out, r)
		t.Errorf("node peer run:\n%s", out.String())
	}
	if len(r.Servers) != 3 || r.Servers[0].RSSMiB == 0 {
		t.Errorf("servers measured: %+v, want redis and two node processes", r.Servers)
	}
}

func waitOwned(t *testing.T, w *harness.Proc) {
	t.Helper()
	if w.MetricAtLeast(context.Background(), "roomstream_worker_partitions_owned", 16, 20*time.Second) < 16 {
		t.Fatal("worker does not own every partition")
	}
}

type testLog struct{ t *testing.T }

func (l *testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
