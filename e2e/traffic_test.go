package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roomstream/roomstream/e2e/sioclient"
	"github.com/roomstream/roomstream/e2e/testkit"
	"github.com/roomstream/roomstream/schemas"
)

// traffic is rooms of members that send numbered progress events and
// record every one they receive, so that a test can tell lost, duplicated
// and reordered deliveries apart.
type traffic struct {
	t       *testing.T
	members []*member
	sent    atomic.Int64
	// base is the last seq sent: a second send goes on from it.
	base int64
}

type member struct {
	user, room string
	url        string
	c          *sioclient.Client

	mu     sync.Mutex
	status map[int64]string   // seq -> ok, or the refusal code
	recv   map[string][]int64 // sender -> seqs in arrival order
	events map[string]int     // other events by name
	lat    []float64          // delivery latencies (ms, from sentAt)
}

type progress struct {
	UserID string `json:"userId"`
	RoomID string `json:"roomId"`
	Seq    int64  `json:"seq"`
	SentAt int64  `json:"sentAt"`
}

// newTraffic connects members*rooms clients, spread over urls, and joins
// them to their rooms.
func newTraffic(t *testing.T, urls []string, rooms, members int) *traffic {
	t.Helper()
	tr := &traffic{t: t}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for r := 0; r < rooms; r++ {
		for m := 0; m < members; m++ {
			mb := &member{user: fmt.Sprintf("u%d-%d", r, m), room: fmt.Sprintf("room-%d", r),
				url: urls[(r*members+m)%len(urls)], status: map[int64]string{}, recv: map[string][]int64{}, events: map[string]int{}}
			tr.members = append(tr.members, mb)
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := sioclient.Dial(context.Background(), mb.url, &sioclient.Options{Token: users.Token(t, mb.user, mb.user), OnEvent: mb.onEvent})
				if err != nil {
					mu.Lock()
					t.Errorf("dial %s: %v", mb.user, err)
					mu.Unlock()
					return
				}
				mb.c = c
				if _, err := c.EmitAck(testkit.Within(t, 20*time.Second), schemas.EventJoinRoom, map[string]string{"roomId": mb.room}); err != nil {
					mu.Lock()
					t.Errorf("join %s: %v", mb.user, err)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Cleanup(func() {
		for _, m := range tr.members {
			if m.c != nil {
				m.c.Drop()
			}
		}
	})
	return tr
}

func (m *member) onEvent(ev sioclient.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ev.Name != schemas.EventFileUploadProgress {
		m.events[ev.Name]++
		return
	}
	var p progress
	if err := json.Unmarshal(ev.Args[0], &p); err == nil {
		m.recv[p.UserID] = append(m.recv[p.UserID], p.Seq)
		if p.SentAt > 0 {
			m.lat = append(m.lat, float64(time.Now().UnixMilli()-p.SentAt))
		}
	}
}

// send has every member send n progress events, one every gap, each
// waiting for its ack. A refused event (e.g. Redis unavailable) is recorded
// with its code and not retried.
func (tr *traffic) send(n int, gap time.Duration) {
	var wg sync.WaitGroup
	first, last := tr.base+1, tr.base+int64(n)
	tr.base = last
	for _, m := range tr.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := first; seq <= last; seq++ {
				payload := map[string]any{"fileId": "f-" + m.user, "uploadId": "u-" + m.user, "fileName": "data.bin", "roomId": m.room,
					"bytesUploaded": seq, "totalBytes": last, "percentage": float64(seq) * 100 / float64(last), "seq": seq, "sentAt": time.Now().UnixMilli()}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				raw, err := m.c.EmitAck(ctx, schemas.EventFileUploadProgress, payload)
				cancel()
				status := "no_ack"
				if err == nil {
					var a schemas.Ack
					_ = json.Unmarshal(raw, &a)
					status = "ok"
					if !a.OK {
						status = string(a.Error.Code)
					}
				}
				m.mu.Lock()
				m.status[seq] = status
				m.mu.Unlock()
				tr.sent.Add(1)
				time.Sleep(gap)
			}
		}()
	}
	wg.Wait()
}

// tally counts, for every receiver, each acknowledged event of each sender
// in its room: delivered once (good), missing (lost), more than once
// (duplicated), and out of order.
type tally struct {
	sent, accepted, refused, delivered, lost, duplicated, reordered int
	refusals                                                        map[string]int
}

func (tr *traffic) tally() tally {
	// Copy each member's records under its own lock first: a member is
	// both a sender and a receiver.
	status := map[*member]map[int64]string{}
	recv := map[*member]map[string][]int64{}
	byRoom := map[string][]*member{}
	for _, m := range tr.members {
		m.mu.Lock()
		st := make(map[int64]string, len(m.status))
		for k, v := range m.status {
			st[k] = v
		}
		rc := make(map[string][]int64, len(m.recv))
		for k, v := range m.recv {
			rc[k] = append([]int64(nil), v...)
		}
		m.mu.Unlock()
		status[m], recv[m] = st, rc
		byRoom[m.room] = append(byRoom[m.room], m)
	}
	tl := tally{refusals: map[string]int{}}
	for _, s := range tr.members {
		for _, st := range status[s] {
			tl.sent++
			if st == "ok" {
				tl.accepted++
			} else {
				tl.refused++
				tl.refusals[st]++
			}
		}
	}
	for _, r := range tr.members {
		for _, s := range byRoom[r.room] {
			got := recv[r][s.user]
			seen := map[int64]int{}
			for i, seq := range got {
				seen[seq]++
				if i > 0 && seq <= got[i-1] {
					tl.reordered++
				}
			}
			for seq, st := range status[s] {
				switch n := seen[seq]; {
				case st == "ok" && n == 0:
					tl.lost++
				case n == 1:
					tl.delivered++
				case n > 1:
					tl.delivered++
					tl.duplicated += n - 1
				}
			}
		}
	}
	return tl
}

// latency returns the p50 and p99 delivery latency (ms) recorded since
// the last call, and forgets them.
func (tr *traffic) latency() (p50, p99 float64) {
	var all []float64
	for _, m := range tr.members {
		m.mu.Lock()
		all = append(all, m.lat...)
		m.lat = nil
		m.mu.Unlock()
	}
	if len(all) == 0 {
		return 0, 0
	}
	sort.Float64s(all)
	return all[len(all)/2], all[len(all)*99/100]
}

// settle waits until nothing is lost any more (late deliveries after a
// failover) or d passes, and returns the final tally.
func (tr *traffic) settle(d time.Duration) tally {
	deadline := time.Now().Add(d)
	for {
		tl := tr.tally()
		if tl.lost == 0 || time.Now().After(deadline) {
			return tl
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (tl tally) String() string {
	keys := make([]string, 0, len(tl.refusals))
	for k := range tl.refusals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ref := ""
	for _, k := range keys {
		ref += fmt.Sprintf(" %s=%d", k, tl.refusals[k])
	}
	return fmt.Sprintf("sent %d, accepted %d, refused %d%s; deliveries %d, lost %d, duplicated %d, out of order %d",
		tl.sent, tl.accepted, tl.refused, ref, tl.delivered, tl.lost, tl.duplicated, tl.reordered)
}
