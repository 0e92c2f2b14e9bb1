package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/roomstream/roomstream/connector/auth"
)

// ShardConfig is the part of a run one generator process performs: a
// contiguous range of connections made of whole rooms. A run with more
// connections than one process may open (its open-file limit) is split
// into several shards, each in its own process.
type ShardConfig struct {
	URLs        []string      `json:"urls"`
	Conns       int           `json:"conns"`
	FirstConn   int           `json:"first_conn"` // global index of the first connection; a multiple of RoomSize
	RoomSize    int           `json:"room_size"`
	RampUp      time.Duration `json:"ramp_up"`
	SourceAddrs []string      `json:"source_addrs"` // loopback addresses to dial from, round robin; empty = any
	Secret      string        `json:"secret"`
	Run         string        `json:"run"` // prefix of user, room and upload ids
	Join        bool          `json:"join"`
	// Polling makes the simulated users speak HTTP long-polling instead
	// of WebSocket.
	Polling bool `json:"polling"`
	// Dials is how many connection attempts may be in flight at once.
	Dials int `json:"dials"`
	// ConnectTimeout bounds one connection's handshake and join.
	ConnectTimeout time.Duration `json:"connect_timeout"`
	// Drain is the longest a step waits, after its last send, for the
	// deliveries still in flight.
	Drain time.Duration `json:"drain"`
	// Senders is the number of goroutines writing events.
	Senders int `json:"senders"`
}

// Counters are cumulative totals of a shard (or of a step, as a
// difference of two readings).
type Counters struct {
	Sent       int64 `json:"sent"`
	SendErrors int64 `json:"send_errors"`
	Expected   int64 `json:"expected"`  // deliveries owed to other members for the events sent
	Delivered  int64 `json:"delivered"` // first receipts by another member
	Dups       int64 `json:"duplicated"`
	Gaps       int64 `json:"gaps"` // sequence numbers skipped at receipt
	// Reordered are first receipts that came after a higher sequence
	// number of the same sender (per sender, per receiving member).
	Reordered   int64 `json:"reordered"`
	Echoes      int64 `json:"echoes"` // a sender's own events relayed back to it
	ErrorEvents int64 `json:"error_events"`
	Disconnects int64 `json:"disconnects"`
	Other       int64 `json:"other_events"`
}

func (a Counters) sub(b Counters) Counters {
	return Counters{Sent: a.Sent - b.Sent, SendErrors: a.SendErrors - b.SendErrors, Expected: a.Expected - b.Expected,
		Delivered: a.Delivered - b.Delivered, Dups: a.Dups - b.Dups, Gaps: a.Gaps - b.Gaps, Reordered: a.Reordered - b.Reordered,
		Echoes: a.Echoes - b.Echoes, ErrorEvents: a.ErrorEvents - b.ErrorEvents, Disconnects: a.Disconnects - b.Disconnects,
		Other: a.Other - b.Other}
}

func (a Counters) add(b Counters) Counters {
	return Counters{Sent: a.Sent + b.Sent, SendErrors: a.SendErrors + b.SendErrors, Expected: a.Expected + b.Expected,
		Delivered: a.Delivered + b.Delivered, Dups: a.Dups + b.Dups, Gaps: a.Gaps + b.Gaps, Reordered: a.Reordered + b.Reordered,
		Echoes: a.Echoes + b.Echoes, ErrorEvents: a.ErrorEvents + b.ErrorEvents, Disconnects: a.Disconnects + b.Disconnects,
		Other: a.Other + b.Other}
}

// Lost is the number of deliveries owed and not made.
func (a Counters) Lost() int64 { return max(0, a.Expected-a.Delivered) }

type atomicCounters struct {
	Sent, SendErrors, Expected, Delivered, Dups, Gaps, Reordered, Echoes, ErrorEvents, Disconnects, Other atomic.Int64
}

func (a *atomicCounters) load() Counters {
	return Counters{Sent: a.Sent.Load(), SendErrors: a.SendErrors.Load(), Expected: a.Expected.Load(),
		Delivered: a.Delivered.Load(), Dups: a.Dups.Load(), Gaps: a.Gaps.Load(), Reordered: a.Reordered.Load(),
		Echoes: a.Echoes.Load(), ErrorEvents: a.ErrorEvents.Load(), Disconnects: a.Disconnects.Load(), Other: a.Other.Load()}
}

// shard runs the connections of one ShardConfig.
type shard struct {
	cfg      ShardConfig
	dialers  []*net.Dialer  // one per source address
	clients  []*http.Client // the same, for long-polling
	reactors []*reactor     // read the WebSocket connections once joined
	conns    []*conn
	alive    []atomic.Int32 // connected members per room
	live     atomic.Int64   // connections up
	failed   atomic.Int64
	c        atomicCounters

	lat     Histogram // every delivery's latency, µs
	tickLat atomic.Pointer[Histogram]
	stepLat atomic.Pointer[Histogram]
	connect Histogram // time to CONNECT, µs
	join    Histogram // time to the join's ack, µs

	stopping atomic.Bool
	errMu    sync.Mutex
	errs     map[string]int // error samples and their counts
}

func newShard(cfg ShardConfig) (*shard, error) {
	if cfg.RoomSize < 1 {
		return nil, errors.New("bench: room size must be at least 1")
	}
	if len(cfg.URLs) == 0 {
		return nil, errors.New("bench: no target URL")
	}
	if cfg.Dials <= 0 {
		cfg.Dials = 256
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 30 * time.Second
	}
	if cfg.Senders <= 0 {
		cfg.Senders = 32
	}
	if cfg.Drain <= 0 {
		cfg.Drain = 15 * time.Second
	}
	for _, u := range cfg.URLs {
		if _, err := url.Parse(u); err != nil {
			return nil, fmt.Errorf("bench: target %q: %w", u, err)
		}
	}
	sh := &shard{cfg: cfg, errs: map[string]int{}}
	rooms := (cfg.Conns + cfg.RoomSize - 1) / cfg.RoomSize
	sh.alive = make([]atomic.Int32, rooms)
	sh.tickLat.Store(&Histogram{})
	sh.stepLat.Store(&Histogram{})
	addrs := cfg.SourceAddrs
	if len(addrs) == 0 {
		addrs = []string{""}
	}
	for _, a := range addrs {
		d := &net.Dialer{Timeout: cfg.ConnectTimeout}
		if a != "" {
			ip := net.ParseIP(a)
			if ip == nil {
				return nil, fmt.Errorf("bench: source address %q is not an IP", a)
			}
			d.LocalAddr = &net.TCPAddr{IP: ip}
			d.Control = bindNoPort
		}
		sh.dialers = append(sh.dialers, d)
		// Long-polling keeps two connections per user alive (the poll and
		// the POST).
		sh.clients = append(sh.clients, &http.Client{Transport: &http.Transport{
			DialContext: d.DialContext, DisableCompression: true, MaxIdleConnsPerHost: 2*cfg.Conns + 16,
		}})
	}
	sh.conns = make([]*conn, cfg.Conns)
	for i := range sh.conns {
		sh.conns[i] = &conn{sh: sh, idx: cfg.FirstConn + i, room: i / cfg.RoomSize, slot: i % cfg.RoomSize,
			seqs: make([]seqWindow, cfg.RoomSize)}
	}
	return sh, nil
}

// bindNoPort sets IP_BIND_ADDRESS_NO_PORT on a socket about to be bound
// to a source address: the kernel then picks its port at connect time,
// per destination, instead of reserving one of the address's ~28,000
// ports for good at bind time (which gets slow, then fails, as they run
// out).
func bindNoPort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT (linux/in.h).
const ipBindAddressNoPort = 24

// wsTarget is the host and the Engine.IO WebSocket path of connection
// idx (plain ws: the servers are on loopback).
func (sh *shard) wsTarget(idx int) (host, path string) {
	u, _ := url.Parse(sh.cfg.URLs[idx%len(sh.cfg.URLs)])
	return u.Host, "/socket.io/?EIO=4&transport=websocket"
}

// sourceIndex picks the source address of connection idx. Connections of
// one target spread over every source address.
func (sh *shard) sourceIndex(idx int) int { return (idx / len(sh.cfg.URLs)) % len(sh.dialers) }

func (sh *shard) dialer(idx int) *net.Dialer { return sh.dialers[sh.sourceIndex(idx)] }

func (sh *shard) httpClient(idx int) *http.Client { return sh.clients[sh.sourceIndex(idx)] }

// startReactors starts one reactor per core the shard may use.
func (sh *shard) startReactors() error {
	for range max(1, runtime.GOMAXPROCS(0)) {
		r, err := newReactor(sh)
		if err != nil {
			return err
		}
		sh.reactors = append(sh.reactors, r)
	}
	return nil
}

func (sh *shard) reactorFor(c *conn) *reactor {
	return sh.reactors[(c.idx-sh.cfg.FirstConn)%len(sh.reactors)]
}

func (sh *shard) userID(idx int) string { return sh.cfg.Run + "-u" + strconv.Itoa(idx) }

func (sh *shard) roomID(room int) string {
	return sh.cfg.Run + "-r" + strconv.Itoa(sh.cfg.FirstConn/sh.cfg.RoomSize+room)
}

func (sh *shard) token(idx int) (string, error) {
	return auth.Sign(sh.cfg.Secret, sh.userID(idx), "Bench User "+strconv.Itoa(idx), 24*time.Hour)
}

// noteError keeps a sample of what went wrong (first 120 characters),
// counted.
func (sh *shard) noteError(b []byte) {
	sh.c.ErrorEvents.Add(1)
	sh.noteErr(string(b))
}

func (sh *shard) noteErr(s string) {
	if len(s) > 120 {
		s = s[:120]
	}
	sh.errMu.Lock()
	defer sh.errMu.Unlock()
	if _, ok := sh.errs[s]; ok || len(sh.errs) < 20 {
		sh.errs[s]++
	}
}

func (sh *shard) errorSamples() map[string]int {
	sh.errMu.Lock()
	defer sh.errMu.Unlock()
	out := make(map[string]int, len(sh.errs))
	for k, v := range sh.errs {
		out[k] = v
	}
	return out
}

// gone is called when a connection's read loop ends.
func (sh *shard) gone(c *conn) {
	c.up.Store(false)
	sh.live.Add(-1)
	sh.alive[c.room].Add(-1)
	if !sh.stopping.Load() {
		sh.c.Disconnects.Add(1)
		sh.noteErr("connection closed during the run")
	}
}

// connectAll opens every connection, spread evenly over the ramp-up.
func (sh *shard) connectAll(ctx context.Context) {
	if !sh.cfg.Polling {
		if err := sh.startReactors(); err != nil {
			sh.failed.Add(int64(len(sh.conns)))
			sh.noteErr("epoll: " + err.Error())
			return
		}
	}
	n := len(sh.conns)
	sem := make(chan struct{}, sh.cfg.Dials)
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range sh.conns {
		if n > 1 && sh.cfg.RampUp > 0 {
			at := start.Add(time.Duration(int64(sh.cfg.RampUp) * int64(i) / int64(n)))
			if d := time.Until(at); d > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case sem <- struct{}{}:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, sh.cfg.ConnectTimeout)
			cd, jd, err := c.connect(cctx)
			cancel()
			if err != nil {
				sh.failed.Add(1)
				sh.noteErr("connect: " + err.Error())
				c.ws, c.pl = nil, nil
				return
			}
			sh.connect.Record(cd.Microseconds())
			if sh.cfg.Join {
				sh.join.Record(jd.Microseconds())
			}
			c.up.Store(true)
			sh.live.Add(1)
			sh.alive[c.room].Add(1)
			if err := c.startReading(); err != nil {
				sh.noteErr("read: " + err.Error())
				c.up.Store(false)
				sh.live.Add(-1)
				sh.alive[c.room].Add(-1)
				sh.failed.Add(1)
			}
		}()
	}
	wg.Wait()
}

// sendStep sends events at rate per second for d, spreading them over the
// rooms, then waits for the deliveries still in flight. It returns how
// long it actually sent and whether it kept up with the rate.
func (sh *shard) sendStep(ctx context.Context, rate float64, d time.Duration) (sending time.Duration, behind int64) {
	if rate <= 0 || len(sh.conns) == 0 {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
		return d, 0
	}
	work := make(chan *conn, 4096)
	var wg sync.WaitGroup
	for range sh.cfg.Senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 0, 512)
			for c := range work {
				owed := int64(sh.alive[c.room].Load()) - 1
				var err error
				buf, err = c.send(buf)
				if err != nil {
					sh.c.SendErrors.Add(1)
					sh.noteErr("send: " + err.Error())
					continue
				}
				sh.c.Sent.Add(1)
				sh.c.Expected.Add(owed)
			}
		}()
	}
	order := sh.sendOrder()
	start := time.Now()
	var issued int64
	next := 0
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	total := int64(math.Round(rate * d.Seconds()))
loop:
	for issued < total {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
		due := min(total, int64(rate*time.Since(start).Seconds()))
		for ; issued < due; issued++ {
			// Next live connection in the order; give up after a full
			// round without one.
			var c *conn
			for range len(order) {
				cand := sh.conns[order[next]]
				next = (next + 1) % len(order)
				if cand.up.Load() {
					c = cand
					break
				}
			}
			if c == nil {
				break loop
			}
			select {
			case work <- c:
			case <-ctx.Done():
				break loop
			}
		}
	}
	close(work)
	wg.Wait()
	sending = time.Since(start)
	behind = max(0, int64(rate*sending.Seconds())-issued)
	// Let in-flight deliveries land: until every owed delivery arrived, or
	// nothing arrived for a while, or the drain time is over.
	// Echoes count too: a sender's own copy of its last event may still
	// be on its way when every other member has theirs.
	deadline := time.Now().Add(sh.cfg.Drain)
	var last int64 = -1
	lastChange := time.Now()
	for time.Now().Before(deadline) {
		cur := sh.c.load()
		if cur.Delivered >= cur.Expected && cur.Echoes >= cur.Sent {
			break
		}
		if got := cur.Delivered + cur.Echoes; got != last {
			last, lastChange = got, time.Now()
		} else if time.Since(lastChange) > 5*time.Second {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return sending, behind
}

// sendOrder visits every room before any room's second member, so that
// consecutive events go to different rooms.
func (sh *shard) sendOrder() []int {
	rooms := len(sh.alive)
	out := make([]int, 0, len(sh.conns))
	for slot := range sh.cfg.RoomSize {
		for r := range rooms {
			if i := r*sh.cfg.RoomSize + slot; i < len(sh.conns) {
				out = append(out, i)
			}
		}
	}
	return out
}

// closeAll ends every connection without waiting for the server: the
// reactors close the sockets shut down here, then stop.
func (sh *shard) closeAll() {
	sh.stopping.Store(true)
	for _, c := range sh.conns {
		if c.pl != nil {
			c.pl.close()
		}
		if c.ws == nil {
			continue
		}
		c.wmu.Lock()
		if !c.ws.closed && c.ws.fd >= 0 {
			_ = syscall.Shutdown(c.ws.fd, syscall.SHUT_RDWR)
		}
		c.wmu.Unlock()
	}
	for _, r := range sh.reactors {
		r.close()
	}
}
