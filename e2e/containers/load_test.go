package containers_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roomstream/roomstream/e2e/containers"
	"github.com/roomstream/roomstream/e2e/testkit"
	"github.com/roomstream/roomstream/schemas"
)

// participant is one Go client in a room: it joins, starts an upload and
// then reports progress (bytesUploaded = seq, strictly increasing) until
// told to stop, waiting for each ack. It never retries: an event whose ack
// did not come may or may not have been accepted, and the inbound streams
// tell which.
type participant struct {
	m      *testkit.Member
	room   string
	upload string

	mu      sync.Mutex
	seq     int64
	acked   []testkit.Key
	refused map[schemas.Code]int
	unknown []testkit.Key
	errs    []string
}

// traffic drives participants and adds up what they sent.
type traffic struct {
	t        *testing.T
	c        *containers.Cluster
	interval time.Duration
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	ps       []*participant
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
func (tr *traffic) add(prefix string, n int, rooms []string, next func(i int) func(failed string) string) []*participant {
	t := tr.t
	t.Helper()
	ps := make([]*participant, n)
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
			p := &participant{m: m, room: rooms[i%len(rooms)], upload: "up-" + user, refused: map[schemas.Code]int{}}
			if err := p.setup(ctx); err != nil {
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
			p.run(tr.stop, tr.interval)
		}()
	}
	return ps
}

// setup joins the room and starts the upload, retrying what the server
// refused as temporary.
func (p *participant) setup(ctx context.Context) error {
	steps := []struct {
		event   string
		payload any
	}{
		{schemas.EventJoinRoom, map[string]string{"roomId": p.room, "userId": p.m.User}},
		{schemas.EventFileUploadStarted, map[string]any{"fileId": p.upload, "uploadId": p.upload, "fileName": p.upload + ".bin",
			"roomId": p.room, "userId": p.m.User, "size": 1 << 30}},
	}
	for _, s := range steps {
		for {
			a, err := p.m.Ack(ctx, s.event, s.payload)
			if err == nil && a.OK {
				break
			}
			if err == nil && a.Error != nil && a.Error.Temporary {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			return fmt.Errorf("%s %s: %+v %v", p.m.User, s.event, a.Error, err)
		}
	}
	return nil
}

func (p *participant) run(stop <-chan struct{}, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		p.mu.Lock()
		p.seq++
		seq := p.seq
		p.mu.Unlock()
		k := testkit.Key{User: p.m.User, Upload: p.upload, Bytes: seq}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		a, err := p.m.Ack(ctx, schemas.EventFileUploadProgress, map[string]any{"fileId": p.upload, "uploadId": p.upload,
			"fileName": p.upload + ".bin", "roomId": p.room, "userId": p.m.User, "bytesUploaded": seq, "totalBytes": 1 << 30,
			"percentage": float64(seq) * 100 / (1 << 30), "seq": seq, "sentAt": time.Now().UnixMilli()})
		cancel()
		p.mu.Lock()
		switch {
		case err != nil:
			p.unknown = append(p.unknown, k)
			if !errors.Is(err, testkit.ErrUnknown) {
				p.errs = append(p.errs, fmt.Sprintf("seq %d: %v", seq, err))
			}
		case a.OK:
			p.acked = append(p.acked, k)
		case a.Error != nil && a.Error.Temporary:
			p.refused[a.Error.Code]++
		default:
			p.errs = append(p.errs, fmt.Sprintf("seq %d refused: %+v", seq, a.Error))
		}
		p.mu.Unlock()
	}
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
			p.m.Close()
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
		p.mu.Lock()
		s.clients++
		s.sent += int(p.seq)
		s.acked += len(p.acked)
		s.unknown += len(p.unknown)
		for _, n := range p.refused {
			s.refused += n
		}
		for _, e := range p.errs {
			s.errs = append(s.errs, p.m.User+": "+e)
		}
		p.mu.Unlock()
		n, lost := p.m.Reconnects()
		s.reconnects += n
		for _, l := range lost {
			s.lostState = append(s.lostState, p.m.User+": "+l)
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
			rs = append(rs, testkit.Receiver{Label: p.m.User, SID: p.m.SID(), Room: p.room, Got: testkit.ProgressOf(p.m.Events(), p.room)})
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
		for _, k := range p.acked {
			if !truth.Accepted(p.room, k) {
				ackedLost++
				if ackedLost <= 10 {
					t.Errorf("%s: %s was acknowledged but is not in the inbound stream", p.m.User, k)
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
