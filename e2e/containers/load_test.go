package containers_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roomstream/roomstream/e2e/containers"
	"github.com/roomstream/roomstream/e2e/testkit"
)

// traffic drives participants and adds up what they sent.
type traffic struct {
	t        *testing.T
	c        *containers.Cluster
	interval time.Duration
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	ps       []*testkit.Participant
	joins    atomic.Int64
}

func newTraffic(t *testing.T, c *containers.Cluster, interval time.Duration) *traffic {
	tr := &traffic{t: t, c: c, interval: interval, stop: make(chan struct{})}
	t.Cleanup(tr.close)
	return tr
}

// add connects n clients named prefix-i to the connectors next(i) gives,
// puts client i in room rooms[i%len(rooms)] and starts its traffic. The
// connections are made concurrently.
func (tr *traffic) add(prefix string, n int, rooms []string, next func(i int) func(failed string) string) []*testkit.Participant {
	t := tr.t
	t.Helper()
	ps := make([]*testkit.Participant, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 20)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			user := fmt.Sprintf("%s-%03d", prefix, i)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			m, err := testkit.DialMember(ctx, user, strings.ToUpper(user[:1])+user[1:], tr.c.Token(user, user), next(i))
			if err != nil {
				errs <- err
				return
			}
			p := testkit.NewParticipant(m, rooms[i%len(rooms)])
			if err := p.Setup(ctx); err != nil {
				m.Close()
				errs <- err
				return
			}
			tr.joins.Add(1)
			ps[i] = p
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	tr.mu.Lock()
	tr.ps = append(tr.ps, ps...)
	tr.mu.Unlock()
	for _, p := range ps {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			p.Run(tr.stop, tr.interval)
		}()
	}
	return ps
}

// halt stops the traffic and waits for the last acks.
func (tr *traffic) halt() {
	select {
	case <-tr.stop:
	default:
		close(tr.stop)
	}
	tr.wg.Wait()
}

func (tr *traffic) close() {
	tr.halt()
	for _, p := range tr.ps {
		if p != nil {
			p.M.Close()
		}
	}
}

// summary is what the senders saw.
type summary struct {
	clients, sent, acked, refused, unknown int
	errs                                   []string
	reconnects                             int
	lostState                              []string
}

func (tr *traffic) summary() summary {
	var s summary
	for _, p := range tr.ps {
		r := p.Report()
		s.clients++
		s.sent += int(r.Sent)
		s.acked += len(r.Acked)
		s.unknown += len(r.Unknown)
		s.refused += r.Refused
		for _, e := range r.Errs {
			s.errs = append(s.errs, p.M.User+": "+e)
		}
		n, lost := p.M.Reconnects()
		s.reconnects += n
		for _, l := range lost {
			s.lostState = append(s.lostState, p.M.User+": "+l)
		}
	}
	return s
}

// extra is another receiver to check (the design JS client).
type extra func() testkit.Receiver

// verify waits until the streams are drained and every receiver has what
// the streams say it must have, then checks: every acknowledged event was
// accepted, every accepted event reached every member of its room exactly
// once and in the room's order, nothing was dead-lettered.
func (tr *traffic) verify(ctx context.Context, name string, began time.Time, extras ...extra) testkit.Tally {
	t := tr.t
	t.Helper()
	tr.halt()
	if err := tr.c.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	truth, err := tr.c.ReadTruth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	receivers := func() []testkit.Receiver {
		var rs []testkit.Receiver
		for _, p := range tr.ps {
			rs = append(rs, testkit.Receiver{Label: p.M.User, SID: p.M.SID(), Room: p.Room, Got: testkit.ProgressOf(p.M.Events(), p.Room)})
		}
		for _, x := range extras {
			rs = append(rs, x())
		}
		return rs
	}
	// Deliveries trail the application by the outbound hop; wait for them.
	var tally testkit.Tally
	for {
		tally = truth.Check(receivers())
		if tally.OK() || ctx.Err() != nil {
			break
		}
		if tally.Received >= tally.Expected && tally.Lost == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	s := tr.summary()
	ackedLost := 0
	for _, p := range tr.ps {
		for _, k := range p.Report().Acked {
			if !truth.Accepted(p.Room, k) {
				ackedLost++
				if ackedLost <= 10 {
					t.Errorf("%s: %s was acknowledged but is not in the inbound stream", p.M.User, k)
				}
			}
		}
	}
	accepted := 0
	for _, list := range truth.Progress {
		accepted += len(list)
	}
	t.Logf("RESULT %s: clients=%d (+%d design JS) progress sent=%d acked=%d refused(temporary)=%d no-ack=%d accepted=%d | deliveries expected=%d received=%d lost=%d duplicated=%d unexpected=%d out-of-order=%d | acked-but-lost=%d dead=%d reconnects=%d unrecovered=%d | inbound entries %v (+%d appended twice, applied once) | wall=%s",
		name, s.clients, len(extras), s.sent, s.acked, s.refused, s.unknown, accepted, tally.Expected, tally.Received, tally.Lost, tally.Duplicated,
		tally.Unexpected, tally.OutOfOrder, ackedLost, truth.Dead, s.reconnects, len(s.lostState), sortedCounts(truth.Entries), truth.Repeated, time.Since(began).Round(time.Millisecond))
	if !tally.OK() {
		t.Errorf("deliveries: %s\n%s", tally, strings.Join(tally.Problems, "\n"))
	}
	if truth.Dead != 0 {
		t.Errorf("%d entries were dead-lettered", truth.Dead)
	}
	if len(s.errs) > 0 {
		t.Errorf("%d unexpected client errors, e.g. %v", len(s.errs), s.errs[:min(5, len(s.errs))])
	}
	if len(s.lostState) > 0 {
		t.Errorf("%d reconnections lost their session: %v", len(s.lostState), s.lostState[:min(5, len(s.lostState))])
	}
	if s.acked == 0 {
		t.Error("no event was acknowledged")
	}
	return tally
}

func sortedCounts(m map[string]int) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var b strings.Builder
	for _, k := range ks {
		fmt.Fprintf(&b, "%s=%d ", k, m[k])
	}
	return strings.TrimSpace(b.String())
}

// roomNames returns n room ids.
func roomNames(prefix string, n int) []string {
	rs := make([]string, n)
	for i := range rs {
		rs[i] = fmt.Sprintf("%s-%02d", prefix, i)
	}
	return rs
}

// fixed always connects to p, and to another live connector once p fails.
func fixed(c *containers.Cluster, p *containers.Proc) func(failed string) string {
	return func(failed string) string {
		if failed == "" || (failed != p.URL() && p.Live()) {
			return p.URL()
		}
		return otherConnector(c, failed)
	}
}

// otherConnector picks a live connector other than failed.
func otherConnector(c *containers.Cluster, failed string) string {
	live := c.Connectors()
	var cands []string
	for _, p := range live {
		if p.URL() != failed {
			cands = append(cands, p.URL())
		}
	}
	if len(cands) == 0 {
		return failed
	}
	return cands[int(time.Now().UnixNano())%len(cands)]
}
