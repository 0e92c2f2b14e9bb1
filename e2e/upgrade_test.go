package e2e

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/roomstream/roomstream/e2e/harness"
	"github.com/roomstream/roomstream/e2e/testkit"
	"github.com/roomstream/roomstream/streams"
)

// previousFile names the commit of the previous release, which the
// rolling-upgrade test runs beside this build.
const previousFile = "../infra/upgrade/previous"

// previousRelease reads the commit of the previous release.
func previousRelease(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(previousFile)
	if err != nil {
		t.Fatalf("the previous release: %v", err)
	}
	commit := strings.TrimSpace(string(b))
	if !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(commit) {
		t.Fatalf("%s holds %q, not a full commit id", previousFile, commit)
	}
	return commit
}

// TestRollingUpgrade runs two connectors and two workers of the previous
// release (infra/upgrade/previous) with 40 clients sending in 20 rooms,
// and replaces each process, one at a time (SIGTERM, then the new one on
// the same address), with this build: the connectors, then the workers,
// so that new connectors write while old workers read. Then it rolls back
// the same way, connectors first again: a worker of the previous release
// must not start while entries of the newer format wait. Nothing may be
// lost or doubled, every room's members must see its events in one
// order, every client whose connector stopped must recover its socket
// (same id) on the other, and nothing may be dead-lettered; while a
// process of the previous release runs, nothing is written in a format it
// cannot read. It prints the counts and, for each step, the longest a
// client went without an ack.
func TestRollingUpgrade(t *testing.T) {
	previous := previousRelease(t)
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	prevBin := harness.BinaryAt(t, previous)
	curBin := harness.Binary(t)
	// Without the race detector's second at exit (GORACE's default), the
	// steps take what they would in production.
	d := deployOf(t, prevBin, 2, 2, false, "GORACE", "atexit_sleep_ms=0")
	r := startRollout(t, d, 20, 2, 200*time.Millisecond)
	t.Logf("previous release %s: 2 connectors, 2 workers, %d clients in 20 rooms sending every 200 ms", previous[:12], len(r.ps))
	r.flowing("the previous release")

	for _, p := range []*harness.Proc{d.connectors[0], d.connectors[1], d.workers[0], d.workers[1]} {
		r.replace(p, curBin, "upgrade")
	}
	// The last process of the previous release is gone: until then
	// nothing was written in a format it cannot read; from its heartbeat's
	// expiry on, the newest format is.
	lastGone := r.steps[len(r.steps)-1].stopped
	if n := r.newestFormatSince(time.Time{}, lastGone); n != streams.FormatPrevious {
		t.Errorf("while the previous release ran, entries of format %d were written; it reads %d", n, streams.FormatPrevious)
	}
	testkit.WaitUntil(t, "entries in the current format once the previous release is gone", time.Minute, func() bool {
		return r.newestFormatSince(lastGone, time.Now()) == streams.FormatCurrent
	})
	t.Logf("format %d written %s after the last process of the previous release was sent SIGTERM",
		streams.FormatCurrent, time.Since(lastGone).Round(100*time.Millisecond))

	for _, p := range []*harness.Proc{d.connectors[0], d.connectors[1], d.workers[0], d.workers[1]} {
		r.replace(p, prevBin, "downgrade")
	}
	r.verify()
}

// rollout is a deployment whose processes are replaced while
// participants send.
type rollout struct {
	t        *testing.T
	d        *processDeployment
	interval time.Duration
	ps       []*testkit.Participant
	stop     chan struct{}
	wg       sync.WaitGroup
	steps    []step
}

// step is one replaced process.
type step struct {
	label            string
	stopped          time.Time // SIGTERM sent
	exit, ready      time.Duration
	moved, recovered int // clients of a connector, and how many came back on the same socket
	reports          int // progress reports sent during the step
	// longest and p99 are the waits for an ack during the step; pause is
	// the longest a client went without an ack (from its last before the
	// SIGTERM), against the reports' interval when all is well.
	longest, p99, pause time.Duration
}

// startRollout connects members clients to each of rooms rooms, spread
// over the deployment's connectors (a client whose connector goes
// reconnects to another), and starts their reports.
func startRollout(t *testing.T, d *processDeployment, rooms, members int, interval time.Duration) *rollout {
	t.Helper()
	r := &rollout{t: t, d: d, interval: interval, stop: make(chan struct{})}
	urls := []string{}
	for _, c := range d.connectors {
		urls = append(urls, c.URL())
	}
	next := func(i int) func(string) string {
		return func(failed string) string {
			if failed == "" {
				return urls[i%len(urls)]
			}
			for _, u := range urls {
				if u != failed {
					return u
				}
			}
			return failed
		}
	}
	ctx := testkit.Within(t, time.Minute)
	for i := range rooms * members {
		user := fmt.Sprintf("u%02d", i)
		m, err := testkit.DialMember(ctx, user, user, users.Token(t, user, user), next(i))
		if err != nil {
			t.Fatal(err)
		}
		p := testkit.NewParticipant(m, fmt.Sprintf("room-%02d", i%rooms))
		if err := p.Setup(ctx); err != nil {
			t.Fatal(err)
		}
		r.ps = append(r.ps, p)
	}
	for _, p := range r.ps {
		r.wg.Add(1)
		go func() { defer r.wg.Done(); p.Run(r.stop, interval) }()
	}
	t.Cleanup(func() {
		r.halt()
		for _, p := range r.ps {
			p.M.Close()
		}
	})
	return r
}

func (r *rollout) halt() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	r.wg.Wait()
}

// minAcked is the fewest reports acknowledged to one client.
func (r *rollout) minAcked() int {
	least := -1
	for _, p := range r.ps {
		if n := p.AckedCount(); least < 0 || n < least {
			least = n
		}
	}
	return least
}

// flowing waits until every client has had three more reports
// acknowledged.
func (r *rollout) flowing(what string) {
	r.t.Helper()
	base := r.minAcked()
	testkit.WaitUntil(r.t, "every client's reports acknowledged with "+what, time.Minute, func() bool { return r.minAcked() >= base+3 })
}

// reconnects adds up the clients' reconnections, and lists those that
// did not recover their socket.
func (r *rollout) reconnects() (n int, lost []string) {
	for _, p := range r.ps {
		k, l := p.M.Reconnects()
		n += k
		for _, s := range l {
			lost = append(lost, p.M.User+": "+s)
		}
	}
	return n, lost
}

// replace swaps p for the binary bin while the traffic runs, waits until
// every client is served again, and records the step.
func (r *rollout) replace(p *harness.Proc, bin, phase string) {
	t := r.t
	t.Helper()
	s := step{label: fmt.Sprintf("%s %s %s", phase, p.Kind, p.Name), stopped: time.Now()}
	for _, pt := range r.ps {
		if pt.M.Base() == p.URL() {
			s.moved++
		}
	}
	before, _ := r.reconnects()
	s.exit, s.ready = p.Replace(bin, 30*time.Second)
	if p.Kind == "worker" {
		r.d.waitPartitionsOwned()
	}
	r.flowing("the new " + p.Name)
	if s.moved > 0 {
		testkit.WaitUntil(t, p.Name+"'s clients reconnected", time.Minute, func() bool {
			n, _ := r.reconnects()
			return n-before >= s.moved
		})
	}
	n, lost := r.reconnects()
	s.recovered = min(n-before, s.moved) - len(lost)
	var waits []time.Duration
	for _, pt := range r.ps {
		var last time.Time
		for _, w := range pt.Waits(s.stopped.Add(-2 * time.Second)) {
			if !w.Sent.Before(s.stopped) {
				waits = append(waits, w.Took)
			}
			if !w.OK {
				continue
			}
			at := w.Sent.Add(w.Took)
			if !last.IsZero() && !at.Before(s.stopped) {
				s.pause = max(s.pause, at.Sub(last))
			}
			last = at
		}
	}
	slices.Sort(waits)
	if len(waits) > 0 {
		s.reports, s.longest, s.p99 = len(waits), waits[len(waits)-1], waits[len(waits)*99/100]
	}
	r.steps = append(r.steps, s)
	t.Logf("%s: exited %s after SIGTERM, the new one ready %s later; clients moved %d, recovered %d; longest a client went without an ack %s; acks waited at most %s (p99 %s, %d reports)",
		s.label, s.exit.Round(time.Millisecond), s.ready.Round(time.Millisecond), s.moved, s.recovered,
		s.pause.Round(time.Millisecond), s.longest.Round(time.Millisecond), s.p99.Round(time.Millisecond), s.reports)
	if len(lost) > 0 {
		t.Errorf("%s: clients lost their socket: %v", s.label, lost)
	}
}

// newestFormatSince returns the newest stream format of the inbound
// entries appended from since to until (0 when none).
func (r *rollout) newestFormatSince(since, until time.Time) int {
	r.t.Helper()
	ctx := context.Background()
	sc := r.d.streams()
	newest := 0
	start := "-"
	if !since.IsZero() {
		start = streams.IDAt(since).String()
	}
	for p := range sc.Partitions() {
		msgs, err := r.d.client().XRange(ctx, sc.Keys.Inbound(p), start, streams.IDAt(until).String()).Result()
		if err != nil {
			r.t.Fatal(err)
		}
		for _, m := range msgs {
			env, err := streams.DecodeEnvelope(m.ID, m.Values)
			if err != nil {
				r.t.Fatalf("entry %s: %v", m.ID, err)
			}
			newest = max(newest, env.Version)
		}
	}
	return newest
}

// verify stops the traffic and checks, against what the inbound streams
// accepted, that every member received every event of its room once and
// in the room's order, and prints the counts.
func (r *rollout) verify() {
	t := r.t
	t.Helper()
	r.halt()
	ctx := testkit.Within(t, 2*time.Minute)
	rdb, keys := r.d.client(), r.d.streams().Keys
	if err := testkit.WaitDrained(ctx, rdb, keys, 8); err != nil {
		t.Fatal(err)
	}
	truth, err := testkit.ReadTruth(ctx, rdb, keys, 8)
	if err != nil {
		t.Fatal(err)
	}
	var tally testkit.Tally
	for {
		var rs []testkit.Receiver
		for _, p := range r.ps {
			rs = append(rs, testkit.Receiver{Label: p.M.User, SID: p.M.SID(), Room: p.Room, Got: testkit.ProgressOf(p.M.Events(), p.Room)})
		}
		tally = truth.Check(rs)
		if tally.OK() || ctx.Err() != nil || tally.Received >= tally.Expected && tally.Lost == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var sent, acked, unknown, refused, ackedLost int
	var errs []string
	for _, p := range r.ps {
		rep := p.Report()
		sent, acked, unknown, refused = sent+int(rep.Sent), acked+len(rep.Acked), unknown+len(rep.Unknown), refused+rep.Refused
		errs = append(errs, rep.Errs...)
		for _, k := range rep.Acked {
			if !truth.Accepted(p.Room, k) {
				if ackedLost++; ackedLost <= 10 {
					t.Errorf("%s: %s was acknowledged but is not in the inbound streams", p.M.User, k)
				}
			}
		}
	}
	accepted := 0
	for _, list := range truth.Progress {
		accepted += len(list)
	}
	reconnects, lost := r.reconnects()
	t.Logf("RESULT rolling upgrade and back: clients %d, progress sent %d, acknowledged %d, no ack (connection dropped) %d, refused (temporary) %d, accepted %d | deliveries expected %d, received %d, lost %d, duplicated %d, unexpected %d, out of order %d | acknowledged but not accepted %d, dead-lettered %d | reconnections %d, without recovery %d",
		len(r.ps), sent, acked, unknown, refused, accepted, tally.Expected, tally.Received, tally.Lost, tally.Duplicated, tally.Unexpected,
		tally.OutOfOrder, ackedLost, truth.Dead, reconnects, len(lost))
	for _, s := range r.steps {
		t.Logf("PAUSE %-30s longest without an ack %7s (reports every %s); longest ack wait %7s, p99 %6s; SIGTERM to exit %s, start to ready %s",
			s.label, s.pause.Round(time.Millisecond), r.interval, s.longest.Round(time.Millisecond), s.p99.Round(time.Millisecond),
			s.exit.Round(time.Millisecond), s.ready.Round(time.Millisecond))
	}
	if !tally.OK() {
		t.Errorf("deliveries: %s\n%s", tally, strings.Join(tally.Problems, "\n"))
	}
	if truth.Dead != 0 {
		t.Errorf("%d entries were dead-lettered", truth.Dead)
	}
	if len(errs) > 0 {
		t.Errorf("%d unexpected client errors, e.g. %v", len(errs), errs[:min(5, len(errs))])
	}
	if len(lost) > 0 {
		t.Errorf("%d reconnections lost their socket: %v", len(lost), lost[:min(5, len(lost))])
	}
	if acked == 0 {
		t.Error("no event was acknowledged")
	}
	r.d.assertDrained(t)
}
