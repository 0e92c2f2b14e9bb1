package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/roomstream/roomstream/e2e/harness"
	"github.com/roomstream/roomstream/e2e/sioclient"
	"github.com/roomstream/roomstream/e2e/testkit"
)

type recoveryReport struct {
	Connects []struct {
		ID        string `json:"id"`
		Recovered bool   `json:"recovered"`
		At        int64  `json:"at"`
	} `json:"connects"`
	Disconnects []struct {
		Reason string `json:"reason"`
		At     int64  `json:"at"`
	} `json:"disconnects"`
	Seqs       []int64           `json:"seqs"`
	SSawLeft   []json.RawMessage `json:"sSawLeft"`
	SSawJoined []json.RawMessage `json:"sSawJoined"`
	IDBefore   string            `json:"idBefore"`
	IDAfter    string            `json:"idAfter"`
	Refused    int               `json:"refused"`
	Timeout    string            `json:"timeout"`
	Error      string            `json:"error"`
}

// runRecovery runs recovery.js with R behind proxy and S on sURL, calls
// breakIt once both are in the room, and returns the report.
func runRecovery(t *testing.T, rURL, sURL string, count int, expectAll bool, breakIt func()) recoveryReport {
	t.Helper()
	return runRecoveryOn(t, "websocket", rURL, sURL, count, expectAll, func(string) { breakIt() })
}

// runRecoveryOn is runRecovery with R on the given transports
// (comma-separated); breakIt gets the Engine.IO id of R's session.
func runRecoveryOn(t *testing.T, transports, rURL, sURL string, count int, expectAll bool, breakIt func(engine string)) recoveryReport {
	t.Helper()
	node := nodeReady(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "recovery.js", rURL, sURL, users.Token(t, "r", "R"), users.Token(t, "s", "S"), "rec-room",
		itoa(count), "40", map[bool]string{true: "1", false: "0"}[expectAll])
	cmd.Dir = "node"
	cmd.Env = append(os.Environ(), "R_TRANSPORTS="+transports)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var rep recoveryReport
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, `"ready":true`) {
			var ready struct{ Engine string }
			_ = json.Unmarshal([]byte(line), &ready)
			time.Sleep(300 * time.Millisecond) // a few events flow first
			breakIt(ready.Engine)
			continue
		}
		if err := json.Unmarshal([]byte(line), &rep); err != nil {
			t.Fatalf("bad report line %q: %v", line, err)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("recovery.js: %v\n%s", err, stderr.String())
	}
	if rep.Error != "" || rep.Timeout != "" {
		t.Fatalf("recovery.js: error %q timeout %q; report %+v", rep.Error, rep.Timeout, rep)
	}
	return rep
}

// checkRecovered asserts socket.recovered, the same id, every event once and
// in order, and no leave or join seen by the other member.
func checkRecovered(t *testing.T, rep recoveryReport, count int) {
	t.Helper()
	if len(rep.Connects) < 2 || !rep.Connects[len(rep.Connects)-1].Recovered {
		t.Fatalf("not recovered: connects %+v disconnects %+v", rep.Connects, rep.Disconnects)
	}
	if rep.IDAfter != rep.IDBefore {
		t.Errorf("socket id changed: %s -> %s", rep.IDBefore, rep.IDAfter)
	}
	if rep.Refused != 0 {
		t.Errorf("%d events of the sender were refused", rep.Refused)
	}
	if len(rep.Seqs) != count {
		t.Errorf("received %d events, want %d", len(rep.Seqs), count)
	}
	for i, s := range rep.Seqs {
		if s != int64(i+1) {
			t.Fatalf("event %d has seq %d: lost, duplicated or out of order; all: %v", i+1, s, rep.Seqs)
		}
	}
	if len(rep.SSawLeft) != 0 || len(rep.SSawJoined) != 0 {
		t.Errorf("membership flapped: S saw left %s joined %s", rep.SSawLeft, rep.SSawJoined)
	}
	down := rep.Connects[len(rep.Connects)-1].At - rep.Disconnects[0].At
	t.Logf("disconnect %q, recovered after %d ms on the same socket id; %d/%d events, in order, none twice", rep.Disconnects[0].Reason, down, len(rep.Seqs), count)
}

func TestRecoveryAfterNetworkDrop(t *testing.T) {
	d := deploy(t, 2, 1, false)
	lb := harness.StartProxy(t, strings.TrimPrefix(d.connectors[0].URL(), "http://"))
	rep := runRecovery(t, lb.URL(), d.connectors[1].URL(), 100, true, func() { lb.Cut(1500 * time.Millisecond) })
	checkRecovered(t, rep, 100)
}

func TestRecoveryOnAnotherConnectorAfterDrain(t *testing.T) {
	d := deploy(t, 2, 1, false)
	lb := harness.StartProxy(t, strings.TrimPrefix(d.connectors[0].URL(), "http://"), strings.TrimPrefix(d.connectors[1].URL(), "http://"))
	rep := runRecovery(t, lb.URL(), d.connectors[1].URL(), 100, true, func() { go d.connectors[0].Stop(15 * time.Second) })
	checkRecovered(t, rep, 100)
	if rep.Disconnects[0].Reason != "transport close" {
		t.Errorf("drained client saw %q", rep.Disconnects[0].Reason)
	}
}

func TestRecoveryAfterConnectorCrash(t *testing.T) {
	d := deploy(t, 2, 1, false)
	lb := harness.StartProxy(t, strings.TrimPrefix(d.connectors[0].URL(), "http://"), strings.TrimPrefix(d.connectors[1].URL(), "http://"))
	rep := runRecovery(t, lb.URL(), d.connectors[1].URL(), 100, true, func() { d.connectors[0].Kill() })
	checkRecovered(t, rep, 100)

	// The reaper comes by once the dead connector's heartbeat has expired
	// (ROOMSTREAM_CONNECTOR_TIMEOUT, 10 s) and must not take a socket
	// that recovered elsewhere away. The script's sockets closed when it
	// ended, most likely before that: R2, on a third connector killed in
	// turn, recovers on the second one and stays past the reaper's visit.
	third := d.addConnector()
	r := users.Dial(t, third.URL(), "r2", "R2")
	s := users.Dial(t, d.connectors[1].URL(), "s2", "S2")
	testkit.MustAck(t, r, "join-room", map[string]string{"roomId": "reap-room"})
	testkit.MustAck(t, s, "join-room", map[string]string{"roomId": "reap-room"})
	testkit.WaitFor(t, r, "user-joined", `"userId":"s2"`) // an event: R2 has an offset to recover from
	sid, pid, offset := r.SID, r.PID, r.Offset()
	third.Kill()
	killed := time.Now()
	r.Drop()
	rec, err := sioclient.Dial(context.Background(), d.connectors[1].URL(), &sioclient.Options{Token: users.Token(t, "r2", "R2"), PID: pid, Offset: offset})
	if err != nil {
		t.Fatalf("R2 recovering on the second connector: %v", err)
	}
	t.Cleanup(func() { rec.Drop() })
	if !rec.Recovered || rec.SID != sid {
		t.Fatalf("R2 not recovered: recovered=%v sid %s (was %s)", rec.Recovered, rec.SID, sid)
	}
	// Both dead connectors reaped: within the heartbeat TTL (10 s) and a
	// few reap intervals (1 s) of the second kill, with room for -race.
	reaped := d.workers[0].MetricAtLeast(context.Background(), "roomstream_worker_connectors_reaped_total", 2, 30*time.Second)
	if reaped < 2 {
		t.Fatalf("connectors reaped: %v, want both killed ones within 30s", reaped)
	}
	t.Logf("both dead connectors reaped %s after the second kill", time.Since(killed).Round(100*time.Millisecond))
	// A join queued after the reaper's disconnects (same room, same
	// partition) sees what they did.
	c := users.Dial(t, d.connectors[1].URL(), "late", "Late")
	snap := testkit.MustAck(t, c, "join-room", map[string]string{"roomId": "rec-room"})
	if len(snap.Room.Members) != 1 {
		// r and s closed their sockets at the end of the script; only the
		// newcomer remains, and nobody is left behind as a ghost.
		t.Errorf("members after the script ended: %+v", snap.Room.Members)
	}
	snap = testkit.MustAck(t, c, "join-room", map[string]string{"roomId": "reap-room"})
	var members []string
	for _, m := range snap.Room.Members {
		members = append(members, m.UserID)
	}
	sort.Strings(members)
	if fmt.Sprint(members) != "[late r2 s2]" {
		t.Errorf("members of reap-room after the reaper ran: %v, want [late r2 s2]", members)
	}
	for {
		select {
		case ev := <-s.Events():
			if ev.Name == "user-left" {
				t.Errorf("S2 saw %s after R2 recovered", ev.Args[0])
			}
			continue
		default:
		}
		break
	}
	if r := testkit.MustAck(t, rec, "lock-room", map[string]string{"roomId": "reap-room"}); !r.OK {
		t.Errorf("R2 after the reaper ran: lock refused %+v", r.Error)
	}
}

func TestRecoveryWindowExpires(t *testing.T) {
	d := deploy(t, 2, 1, false, "ROOMSTREAM_RECOVERY_WINDOW", "5s")
	lb := harness.StartProxy(t, strings.TrimPrefix(d.connectors[0].URL(), "http://"))
	rep := runRecovery(t, lb.URL(), d.connectors[1].URL(), 200, false, func() { lb.Cut(8 * time.Second) })
	last := rep.Connects[len(rep.Connects)-1]
	if last.Recovered || last.ID == rep.IDBefore {
		t.Errorf("reconnected after the window but recovered=%v id %s (was %s)", last.Recovered, last.ID, rep.IDBefore)
	}
	if len(rep.SSawLeft) != 1 || !strings.Contains(string(rep.SSawLeft[0]), `"reason":"recovery_expired"`) {
		t.Errorf("the other member saw left %s, want one user-left with reason recovery_expired", rep.SSawLeft)
	}
	t.Logf("after the window: fresh session %s, the other member saw %s", last.ID, rep.SSawLeft)
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestRecoveryOverPollingAfterConnectorCrash: R polls through a balancer
// that sends each request to another of two connectors; the connector
// holding R's session is killed (-9). R recovers its socket on the other
// one with every missed event, and S (on a third) sees no leave or join.
func TestRecoveryOverPollingAfterConnectorCrash(t *testing.T) {
	d := deploy(t, 3, 1, false)
	lb := harness.StartHTTPBalancer(t, false,
		strings.TrimPrefix(d.connectors[0].URL(), "http://"), strings.TrimPrefix(d.connectors[1].URL(), "http://"))
	killed := ""
	rep := runRecoveryOn(t, "polling", lb.URL(), d.connectors[2].URL(), 100, true, func(engine string) {
		for _, c := range d.connectors[:2] {
			if strings.HasPrefix(engine, c.Name+".") {
				killed = c.Name
				c.Kill()
			}
		}
	})
	if killed == "" {
		t.Fatal("R's session was held by neither connector behind the balancer")
	}
	checkRecovered(t, rep, 100)
	t.Logf("killed %s, which held R's polling session", killed)
}

// TestRecoveryOverPollingAfterDrain: the connector holding R's polling
// session stops gracefully; R gets the close packet, reconnects through
// the balancer and recovers on the other connector.
func TestRecoveryOverPollingAfterDrain(t *testing.T) {
	d := deploy(t, 3, 1, false)
	lb := harness.StartHTTPBalancer(t, false,
		strings.TrimPrefix(d.connectors[0].URL(), "http://"), strings.TrimPrefix(d.connectors[1].URL(), "http://"))
	stopped := ""
	rep := runRecoveryOn(t, "polling", lb.URL(), d.connectors[2].URL(), 100, true, func(engine string) {
		for _, c := range d.connectors[:2] {
			if strings.HasPrefix(engine, c.Name+".") {
				stopped = c.Name
				go c.Stop(15 * time.Second)
			}
		}
	})
	if stopped == "" {
		t.Fatal("R's session was held by neither connector behind the balancer")
	}
	checkRecovered(t, rep, 100)
	if rep.Disconnects[0].Reason != "transport close" {
		t.Errorf("drained polling client saw %q, want transport close (the close packet)", rep.Disconnects[0].Reason)
	}
}
