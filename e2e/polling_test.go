package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/roomstream/roomstream/e2e/harness"
)

type pollingClientReport struct {
	Events      []string `json:"events"`
	Seqs        []int    `json:"seqs"`
	Transports  []string `json:"transports"`
	Disconnects []string `json:"disconnects"`
	Errors      []string `json:"errors"`
	Final       string   `json:"final"`
}

type pollingReport struct {
	OK     bool                `json:"ok"`
	Error  string              `json:"error"`
	Checks []string            `json:"checks"`
	Alice  pollingClientReport `json:"alice"`
	Bob    pollingClientReport `json:"bob"`
}

// runPolling runs polling.js (two real socket.io-clients) against url.
func runPolling(t *testing.T, url, mode, room string, count int) pollingReport {
	t.Helper()
	node := nodeReady(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "polling.js", url, users.Token(t, "alice", "Alice"), users.Token(t, "bob", "Bob"), room, mode, itoa(count))
	cmd.Dir = "node"
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var rep pollingReport
	if jerr := json.Unmarshal(stdout.Bytes(), &rep); jerr != nil || err != nil || !rep.OK {
		t.Fatalf("polling.js %s: %v\nstdout:\n%s\nstderr:\n%s", mode, err, stdout.String(), stderr.String())
	}
	return rep
}

// checkRoomFlow asserts every event once and in order, as each user must
// see them.
func checkRoomFlow(t *testing.T, rep pollingReport, count int) {
	t.Helper()
	if got, want := strings.Join(rep.Checks, " "), "connected joined locked progress file-added"; got != want {
		t.Errorf("checks %q, want %q", got, want)
	}
	progress := slices.Repeat([]string{"file-upload-progress"}, count)
	// Alice joined first: she sees her own join and bob's; bob only his.
	wantAlice := append([]string{"user-joined", "user-joined", "room-locked", "room-unlocked", "file-upload-started"}, progress...)
	wantAlice = append(wantAlice, "file-added")
	wantBob := append([]string{"user-joined", "room-locked", "room-unlocked", "file-upload-started"}, progress...)
	wantBob = append(wantBob, "file-added")
	for _, c := range []struct {
		name string
		got  pollingClientReport
		want []string
	}{{"alice", rep.Alice, wantAlice}, {"bob", rep.Bob, wantBob}} {
		if !slices.Equal(c.got.Events, c.want) {
			t.Errorf("%s saw %q,\nwant %q", c.name, c.got.Events, c.want)
		}
		if len(c.got.Disconnects) != 0 || len(c.got.Errors) != 0 {
			t.Errorf("%s: disconnects %q, connect errors %q", c.name, c.got.Disconnects, c.got.Errors)
		}
	}
	for i, s := range rep.Bob.Seqs {
		if s != i+1 {
			t.Fatalf("bob's progress event %d has seq %d: lost, doubled or reordered; all %v", i+1, s, rep.Bob.Seqs)
		}
	}
	if len(rep.Bob.Seqs) != count {
		t.Errorf("bob got %d progress events, want %d", len(rep.Bob.Seqs), count)
	}
}

// pollingDeployment is two connectors behind a balancer that sends each
// HTTP request to the other connector in turn.
func pollingDeployment(t *testing.T, refuseWebSocket bool) (*processDeployment, *harness.HTTPBalancer) {
	t.Helper()
	d := deploy(t, 2, 1, false)
	lb := harness.StartHTTPBalancer(t, refuseWebSocket,
		strings.TrimPrefix(d.connectors[0].URL(), "http://"), strings.TrimPrefix(d.connectors[1].URL(), "http://"))
	return d, lb
}

// checkSpread asserts that both connectors served requests and that
// connectors forwarded the requests of sessions they did not hold.
func checkSpread(t *testing.T, d *processDeployment, lb *harness.HTTPBalancer) {
	t.Helper()
	served := lb.Served()
	forwarded := 0.0
	for _, c := range d.connectors {
		if served[strings.TrimPrefix(c.URL(), "http://")] == 0 {
			t.Errorf("the balancer sent nothing to %s: %v", c.Name, served)
		}
		forwarded += c.Metric(context.Background(), `roomstream_connector_polling_forwarded_total{result="ok"}`)
	}
	if forwarded == 0 {
		t.Error("no request was forwarded to the connector holding its session")
	}
	t.Logf("requests per connector %v, forwarded between connectors %.0f", served, forwarded)
}

// TestPollingDefaultClient: socket.io-client with its default options
// starts with long-polling and upgrades to a WebSocket, across two
// connectors with no sticky sessions.
func TestPollingDefaultClient(t *testing.T) {
	d, lb := pollingDeployment(t, false)
	rep := runPolling(t, lb.URL(), "default", "poll-default", 30)
	checkRoomFlow(t, rep, 30)
	for name, c := range map[string]pollingClientReport{"alice": rep.Alice, "bob": rep.Bob} {
		if c.Final != "websocket" {
			t.Errorf("%s ended on %q (transports %q), want websocket after the upgrade", name, c.Final, c.Transports)
		}
		if len(c.Transports) == 0 || c.Transports[0] != "open:polling" || !slices.Contains(c.Transports, "upgrade:websocket") {
			t.Errorf("%s did not start polling and upgrade: %q", name, c.Transports)
		}
	}
	checkSpread(t, d, lb)
}

// TestPollingOnlyClient: transports: ['polling'] only.
func TestPollingOnlyClient(t *testing.T) {
	d, lb := pollingDeployment(t, false)
	rep := runPolling(t, lb.URL(), "polling", "poll-only", 30)
	checkRoomFlow(t, rep, 30)
	if rep.Alice.Final != "polling" || rep.Bob.Final != "polling" {
		t.Errorf("transports %q / %q", rep.Alice.Final, rep.Bob.Final)
	}
	checkSpread(t, d, lb)
}

// TestPollingFallback: the design's options (WebSocket first) plus
// tryAllTransports, through a proxy that refuses WebSockets: the client
// falls back to long-polling.
func TestPollingFallback(t *testing.T) {
	d, lb := pollingDeployment(t, true)
	rep := runPolling(t, lb.URL(), "design", "poll-fallback", 30)
	checkRoomFlow(t, rep, 30)
	if rep.Alice.Final != "polling" || rep.Bob.Final != "polling" {
		t.Errorf("transports %q / %q", rep.Alice.Final, rep.Bob.Final)
	}
	if lb.Refused() == 0 {
		t.Error("the proxy refused no WebSocket: the fallback was not exercised")
	}
	checkSpread(t, d, lb)
}
