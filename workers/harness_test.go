package workers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/infra/testredis"
	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// The package's tests drive the workers in two ways, both against a
// private redis-server: a harness applies hand-made envelopes through an
// Applier, one call at a time, and reads back what went out; startWorker
// runs a whole Worker that reads the inbound streams itself.

// harness applies hand-made envelopes against a real redis-server.
type harness struct {
	t    *testing.T
	ctx  context.Context
	rdb  *redis.Client
	c    *streams.Client
	a    *Applier
	seq  int
	now  time.Time
	read map[string]string // last outbound id read per connector
	// members is each connector's view of its sockets' rooms, kept from
	// $join and $leave as a connector keeps it.
	members map[string]map[string]map[string]bool
	// refusedJoins lists the $refused markers read, as conn:room:socket.
	refusedJoins []string
}

// newHarness applies on a private redis-server, on the harness's own
// clock: it starts at a fixed date and every envelope moves it a second
// on, so that tests decide what time it is.
func newHarness(t *testing.T) *harness {
	t.Helper()
	srv := testredis.Start(t, nil)
	return harnessOn(t, srv.Client(), harnessConfig(), time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), nil)
}

// harnessConfig is the streams configuration of a harness.
func harnessConfig() streams.Config {
	return streams.Config{Partitions: 4, RecoveryWindow: 2 * time.Minute, KeyPrefix: "t:", InboundRetention: time.Hour, InboundMaxLen: 1000}
}

// harnessOn returns a harness on rdb with cfg, its envelopes stamped from
// start on; the applier reads the time from clock, or from the
// harness's own clock when clock is nil.
func harnessOn(t *testing.T, rdb *redis.Client, cfg streams.Config, start time.Time, clock func() time.Time) *harness {
	t.Helper()
	c := streams.New(rdb, cfg)
	h := &harness{t: t, ctx: context.Background(), rdb: rdb, c: c, now: start, read: map[string]string{}, members: map[string]map[string]map[string]bool{}}
	if clock == nil {
		clock = func() time.Time { return h.now }
	}
	h.a = NewApplier(c, 30*time.Second, 7*24*time.Hour, clock)
	return h
}

// limited returns a harness whose applier keeps rooms within l.
func limited(t *testing.T, l Limits) *harness {
	h := newHarness(t)
	h.a = h.a.WithLimits(l)
	return h
}

type who struct{ user, name, socket, conn string }

var (
	alice  = who{"alice", "Alice", "sA", "c1"}
	bob    = who{"bob", "Bob", "sB", "c2"}
	alice2 = who{"alice", "Alice", "sA2", "c2"} // alice's second tab
)

func (h *harness) env(w who, typ, room string, payload any, ack bool) *streams.Envelope {
	h.seq++
	h.now = h.now.Add(time.Second)
	e := &streams.Envelope{ID: fmt.Sprintf("%d-0", 1000+h.seq), Type: typ, RoomID: room, UserID: w.user, UserName: w.name,
		SessionID: "ss-" + w.socket, SocketID: w.socket, ConnectorID: w.conn, At: h.now}
	if payload != nil {
		b, _ := json.Marshal(payload)
		e.Data = b
		// Normalized as a connector does (userId from the token), when
		// the test's payload is valid.
		if cmd, err := schemas.ParseCommand(typ, b, w.user); err == nil {
			e.Data = cmd.Data
		}
	}
	if ack {
		e.HasAck, e.AckID = true, int64(h.seq)
	}
	if schemas.IsRoomEvent(typ) {
		// Numbered like a connector numbers a socket's events (the
		// harness's counter rises for every socket, which keeps each
		// socket's numbers rising too).
		e.Origin, e.Seq = "o-"+w.socket, uint64(h.seq)
	}
	return e
}

// apiEnv is a command as the HTTP API appends it.
func (h *harness) apiEnv(typ, room, user, event string, data any) *streams.Envelope {
	h.seq++
	h.now = h.now.Add(time.Second)
	e := &streams.Envelope{ID: fmt.Sprintf("%d-0", 1000+h.seq), Type: typ, RoomID: room, UserID: user, Event: event,
		Via: schemas.ViaAPI, At: h.now}
	if data != nil {
		e.Data, _ = json.Marshal(data)
	}
	return e
}

// again returns e appended a second time: a new entry id, the same event.
func (h *harness) again(e *streams.Envelope) *streams.Envelope {
	h.seq++
	c := *e
	c.ID = fmt.Sprintf("%d-0", 1000+h.seq)
	return &c
}

func (h *harness) apply(e *streams.Envelope) Outcome {
	h.t.Helper()
	out, err := h.a.Apply(h.ctx, 0, 1, e)
	if err != nil {
		h.t.Fatalf("apply %s: %v", e.Type, err)
	}
	return out
}

// got is one delivered packet, flattened for comparison.
type got struct {
	Conn, Event string
	To          string
	Body        map[string]any
}

// drain returns what was written to the outbound streams since last time.
func (h *harness) drain(conns ...string) []got {
	h.t.Helper()
	var out []got
	for _, conn := range conns {
		start := "-"
		if id, ok := h.read[conn]; ok {
			start = "(" + id
		}
		msgs, err := h.rdb.XRange(h.ctx, h.c.Keys.Outbound(conn), start, "+").Result()
		if err != nil {
			h.t.Fatal(err)
		}
		for _, m := range msgs {
			h.read[conn] = m.ID
			o, err := streams.DecodeOutbound(m.ID, m.Values)
			if err != nil {
				h.t.Fatal(err)
			}
			for _, msg := range o.Messages {
				ev := msg.Event
				if ev == "" {
					ev = "ack"
				}
				rooms := h.members[conn]
				if rooms == nil {
					rooms = map[string]map[string]bool{}
					h.members[conn] = rooms
				}
				switch ev {
				case streams.JoinEvent, streams.LeaveEvent:
					if rooms[msg.Room] == nil {
						rooms[msg.Room] = map[string]bool{}
					}
					for _, sid := range msg.To {
						rooms[msg.Room][sid] = ev == streams.JoinEvent
					}
					continue
				case streams.JoinRefusedEvent:
					for _, sid := range msg.To {
						h.refusedJoins = append(h.refusedJoins, conn+":"+msg.Room+":"+sid)
					}
					continue
				}
				var body map[string]any
				_ = json.Unmarshal(msg.Body, &body)
				to := append([]string(nil), msg.To...)
				if msg.Room != "" {
					for sid, in := range rooms[msg.Room] {
						if in {
							to = append(to, sid)
						}
					}
				}
				sort.Strings(to)
				out = append(out, got{Conn: conn, Event: ev, To: strings.Join(to, ","), Body: body})
			}
		}
	}
	return out
}

func events(gs []got) []string {
	var out []string
	for _, g := range gs {
		out = append(out, g.Conn+":"+g.Event+"->"+g.To)
	}
	sort.Strings(out)
	return out
}

func find(t *testing.T, gs []got, event string) got {
	t.Helper()
	for _, g := range gs {
		if g.Event == event {
			return g
		}
	}
	t.Fatalf("no %s in %v", event, events(gs))
	return got{}
}

// startWorker runs a whole Worker (leases, partition loops, janitor,
// trimming) on rs, on its own goroutines, until the test ends or the
// returned cancel is called. Unlike a harness it reads the inbound
// streams itself: tests append envelopes and watch what it writes.
func startWorker(t *testing.T, rs *testredis.Server) (*Worker, *streams.Client, context.CancelFunc) {
	t.Helper()
	cfg := Config{
		Config:   streams.Config{Partitions: 2, KeyPrefix: "w:", RecoveryWindow: time.Minute, InboundRetention: time.Hour, InboundMaxLen: 1000},
		LeaseTTL: time.Second, ClaimMinIdle: 200 * time.Millisecond, MaxAttempts: 3, BatchSize: 10,
		LockGrace: time.Second, EmptyRoomTTL: time.Hour, TrimInterval: time.Second, ReapInterval: 100 * time.Millisecond,
		ConnectorTimeout: time.Second,
	}
	c := streams.New(rs.Client(), cfg.Config)
	w := New(cfg, c, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return w, c, cancel
}

// waitOutbound waits for an outbound entry to connector conn.
func waitOutbound(t *testing.T, c *streams.Client, conn string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for c.Redis().XLen(context.Background(), c.Keys.Outbound(conn)).Val() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("nothing delivered to %s within %s", conn, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
