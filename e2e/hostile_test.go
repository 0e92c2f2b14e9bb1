package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/connector"
	"github.com/roomstream/roomstream/connector/auth"
	"github.com/roomstream/roomstream/e2e/harness"
	"github.com/roomstream/roomstream/e2e/sioclient"
	"github.com/roomstream/roomstream/schemas"
)

// The hostile-client suite: each attack of the hardening list runs from
// its own loopback address against one connector while well-behaved
// clients exchange progress events in the same run. Each attack asserts
// that the attacking socket is refused or closed within a stated time;
// the run asserts that the connector's RSS and Redis's memory stay within
// stated bounds and that the well-behaved clients lost, duplicated and
// reordered nothing and saw no p99 change beyond noise.

// Limits of the hostile run (small, so that each attack hits its limit
// quickly; the defaults are in the README).
var hostileEnv = []string{
	"ROOMSTREAM_CONNECT_TIMEOUT", "2s",
	"ROOMSTREAM_PING_INTERVAL", "2s",
	"ROOMSTREAM_PING_TIMEOUT", "1s",
	"ROOMSTREAM_WRITE_TIMEOUT", "2s",
	"ROOMSTREAM_TOKEN_GRACE", "1s",
	"ROOMSTREAM_MAX_REFUSALS", "20",
	"ROOMSTREAM_MAX_CONNS_PER_IP", "30",
	"ROOMSTREAM_CONNECT_RATE", "20",
	"ROOMSTREAM_MAX_CONNS_PER_USER", "3",
	"ROOMSTREAM_MAX_ROOMS_PER_USER", "3",
}

const (
	// Bounds the run asserts (README, "Hostile clients").
	hostileRSSGrowthMiB   = 64
	hostileRedisGrowthMiB = 16
)

// attack is one hostile client; run returns nil when the server held.
type attack struct {
	name  string
	bound time.Duration // the attacking socket is closed or refused within it
	run   func(t *testing.T, a *attacker) error
}

type attacker struct {
	base string
	ip   net.IP
	user string
}

func TestHostileClients(t *testing.T) {
	d := deploy(t, 1, 1, false, hostileEnv...)
	c := d.connectors[0]
	rdb := d.client()
	tr := newTraffic(t, []string{c.URL()}, 5, 4)

	// Baseline: the well-behaved clients alone.
	tr.send(60, 20*time.Millisecond)
	base50, base99 := tr.latency()
	rss0, mem0 := rssMiB(t, c), redisMiB(t, rdb)

	attacks := hostileAttacks()
	errs := make([]error, len(attacks))
	took := make([]time.Duration, len(attacks))
	var wg sync.WaitGroup
	for i, at := range attacks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := &attacker{base: c.URL(), ip: net.IPv4(127, 0, 1, byte(10+i)), user: fmt.Sprintf("attacker-%d", i)}
			start := time.Now()
			errs[i] = at.run(t, a)
			took[i] = time.Since(start)
		}()
	}
	// The well-behaved clients again, under attack.
	tr.send(60, 20*time.Millisecond)
	wg.Wait()
	under50, under99 := tr.latency()
	rss1, mem1 := rssMiB(t, c), redisMiB(t, rdb)

	for i, at := range attacks {
		status := "held"
		if errs[i] == nil && took[i] > at.bound {
			errs[i] = fmt.Errorf("took %s, bound %s", took[i].Round(time.Millisecond), at.bound)
		}
		if errs[i] != nil {
			status = "FAILED: " + errs[i].Error()
			t.Errorf("%s: %v", at.name, errs[i])
		}
		t.Logf("attack %-26s bound %5s  took %6.2fs  %s", at.name, at.bound, took[i].Seconds(), status)
	}
	tl := tr.settle(10 * time.Second)
	t.Logf("well-behaved clients: %s", tl)
	t.Logf("well-behaved latency: p50 %.0f ms, p99 %.0f ms alone; p50 %.0f ms, p99 %.0f ms under attack", base50, base99, under50, under99)
	t.Logf("connector RSS %.1f MiB -> %.1f MiB; Redis used_memory %.1f MiB -> %.1f MiB", rss0, rss1, mem0, mem1)
	if tl.lost != 0 || tl.duplicated != 0 || tl.reordered != 0 || tl.refused != 0 {
		t.Errorf("well-behaved clients were hurt: %s", tl)
	}
	// Two cores run the server, Redis, twenty clients and the attackers
	// (whose 60 KB frames and floods this test process generates):
	// "beyond noise" is five times the baseline or 250 ms more.
	if under99 > max(5*base99, base99+250) {
		t.Errorf("p99 under attack %.0f ms, alone %.0f ms", under99, base99)
	}
	if rss1-rss0 > hostileRSSGrowthMiB {
		t.Errorf("connector RSS grew %.1f MiB under attack (bound %d)", rss1-rss0, hostileRSSGrowthMiB)
	}
	if mem1-mem0 > hostileRedisGrowthMiB {
		t.Errorf("Redis memory grew %.1f MiB under attack (bound %d)", mem1-mem0, hostileRedisGrowthMiB)
	}
	if !c.Running() {
		t.Fatal("the connector died")
	}
}

// TestBacklogRefusesNewEvents: when the workers stall, a partition whose
// backlog passes MAX_BACKLOG refuses new events with `unavailable` (and
// the metric shows it) until the workers catch up.
func TestBacklogRefusesNewEvents(t *testing.T) {
	d := deploy(t, 1, 1, false, "ROOMSTREAM_MAX_BACKLOG", "20", "ROOMSTREAM_RATE_LIMIT", "1000", "ROOMSTREAM_RATE_BURST", "1000")
	c := d.connectors[0]
	cl := dial(t, c.URL(), "backlogger", "Backlogger")
	d.workers[0].Kill()
	ctx := timeout(t, 30*time.Second)
	progress := map[string]any{"roomId": "stalled", "fileId": "f", "uploadId": "u", "fileName": "x",
		"bytesUploaded": 1, "totalBytes": 2, "percentage": 50}
	var refused bool
	for i := 0; i < 200 && !refused; i++ {
		if err := cl.Emit(ctx, schemas.EventFileUploadProgress, progress); err != nil {
			t.Fatal(err)
		}
		select {
		case ev := <-cl.Events():
			refused = ev.Name == schemas.EventError && strings.Contains(string(ev.Args[0]), `"unavailable"`)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if !refused {
		t.Fatal("200 events with the workers stopped and MAX_BACKLOG=20: none refused with unavailable")
	}
	if n := c.Metric(ctx, "roomstream_connector_backlogged_partitions"); n < 1 {
		t.Errorf("backlogged partitions metric %v", n)
	}
	d.workers[0].Restart()
	for c.Metric(ctx, "roomstream_connector_backlogged_partitions") != 0 {
		if ctx.Err() != nil {
			t.Fatal("the backlog did not clear after the worker came back")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func hostileAttacks() []attack {
	return []attack{
		{"silent after handshake", 5 * time.Second, func(t *testing.T, a *attacker) error {
			ws, err := a.dial(t)
			if err != nil {
				return err
			}
			return closedWithin(ws, 5*time.Second)
		}},
		{"stops reading in a room", 10 * time.Second, func(t *testing.T, a *attacker) error {
			// Joins a busy room, then neither reads nor answers pings:
			// closed at the ping timeout (3 s here). A reader that keeps
			// sending pongs but reads nothing is closed by the send
			// queue's bounds or the write deadline once the kernel's
			// buffers are full (connector tests TestWriteDeadline,
			// TestSendQueueBytes, TestClientThatStopsReading).
			ws, conn, err := a.dialRaw(t, 4096)
			if err != nil {
				return err
			}
			defer conn.Close()
			if err := a.connect(ws, token(t, a.user, a.user)); err != nil {
				return err
			}
			if err := ws.Write(context.Background(), websocket.MessageText, []byte(`42["join-room",{"roomId":"room-0"}]`)); err != nil {
				return err
			}
			time.Sleep(4 * time.Second)
			return closedWithin(ws, 6*time.Second)
		}},
		{"refused CONNECTs, not reading", 5 * time.Second, func(t *testing.T, a *attacker) error {
			ws, err := a.dial(t)
			if err != nil {
				return err
			}
			for range 200 {
				if ws.Write(context.Background(), websocket.MessageText, []byte(`40{"token":"not-a-jwt"}`)) != nil {
					break
				}
			}
			return closedWithin(ws, 5*time.Second)
		}},
		{"60 KB namespace", 2 * time.Second, func(t *testing.T, a *attacker) error {
			ws, err := a.dial(t)
			if err != nil {
				return err
			}
			_ = ws.Write(context.Background(), websocket.MessageText, []byte("40/"+strings.Repeat("n", 60_000)+","))
			return closedWithin(ws, 2*time.Second, noEchoOver(1024))
		}},
		{"10 KB event names", 5 * time.Second, func(t *testing.T, a *attacker) error {
			ws, err := a.dialConnected(t)
			if err != nil {
				return err
			}
			name := strings.Repeat("e", 10_000)
			for i := range 100 {
				if ws.Write(context.Background(), websocket.MessageText, fmt.Appendf(nil, `42%d["%s",{}]`, i, name)) != nil {
					break
				}
			}
			return closedWithin(ws, 5*time.Second, noEchoOver(300))
		}},
		{"event flood", 10 * time.Second, func(t *testing.T, a *attacker) error {
			ws, err := a.dialConnected(t)
			if err != nil {
				return err
			}
			go drain(ws)
			frame := []byte(`42["file-upload-progress",{"roomId":"flood","fileId":"f","uploadId":"u","fileName":"x","bytesUploaded":1,"totalBytes":2,"percentage":50}]`)
			for range 5000 {
				if ws.Write(context.Background(), websocket.MessageText, frame) != nil {
					return nil // dropped
				}
			}
			return closedWithin(ws, 10*time.Second)
		}},
		{"oversized frame", 2 * time.Second, func(t *testing.T, a *attacker) error {
			ws, err := a.dial(t)
			if err != nil {
				return err
			}
			_ = ws.Write(context.Background(), websocket.MessageText, append([]byte("42"), bytes.Repeat([]byte("x"), connector.DefaultMaxPayload+1)...))
			return closedWithin(ws, 2*time.Second)
		}},
		{"slowloris headers", 15 * time.Second, func(t *testing.T, a *attacker) error {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: a.ip}}
			conn, err := d.Dial("tcp", strings.TrimPrefix(a.base, "http://"))
			if err != nil {
				return err
			}
			defer conn.Close()
			_, _ = conn.Write([]byte("GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n"))
			_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
			_, err = io.Copy(io.Discard, conn)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return errors.New("a request with unfinished headers was kept open 15 s")
			}
			return nil
		}},
		{"connections per address", 5 * time.Second, func(t *testing.T, a *attacker) error {
			var held []*websocket.Conn
			defer func() {
				for _, ws := range held {
					ws.CloseNow()
				}
			}()
			refused := 0
			for range 35 {
				ws, err := a.dial(t)
				if err != nil {
					if !strings.Contains(err.Error(), "429") {
						return err
					}
					refused++
					continue
				}
				held = append(held, ws)
			}
			if len(held) != 30 || refused != 5 {
				return fmt.Errorf("held %d, refused %d; want 30 and 5 (MAX_CONNS_PER_IP=30)", len(held), refused)
			}
			return nil
		}},
		{"connect rate per address", 5 * time.Second, func(t *testing.T, a *attacker) error {
			refused, start := 0, time.Now()
			for range 100 {
				ws, err := a.dial(t)
				if err != nil {
					if !strings.Contains(err.Error(), "429") {
						return err
					}
					refused++
					continue
				}
				ws.CloseNow()
			}
			// CONNECT_RATE=20 with a burst of 40: at most 40 + 20/s of
			// the time taken get through.
			allowed := 40 + int(20*time.Since(start).Seconds()) + 1
			if 100-refused > allowed {
				return fmt.Errorf("100 handshakes in %s: %d accepted, at most %d allowed", time.Since(start).Round(time.Millisecond), 100-refused, allowed)
			}
			return nil
		}},
		{"sockets per user", 5 * time.Second, func(t *testing.T, a *attacker) error {
			for i := range 4 {
				c, err := sioclient.Dial(context.Background(), a.base, &sioclient.Options{Token: token(t, a.user, a.user), LocalIP: a.ip})
				if i < 3 {
					if err != nil {
						return fmt.Errorf("socket %d of 3 allowed: %w", i+1, err)
					}
					defer c.Drop()
					continue
				}
				ce, ok := sioclient.IsConnectError(err)
				if !ok || !strings.Contains(string(ce.Data), string(schemas.CodeTooManyConnections)) {
					if err == nil {
						c.Drop()
					}
					return fmt.Errorf("4th socket of a user (MAX_CONNS_PER_USER=3): %v", err)
				}
			}
			return nil
		}},
		{"rooms per user", 5 * time.Second, func(t *testing.T, a *attacker) error {
			var socks []*sioclient.Client
			for range 2 {
				c, err := sioclient.Dial(context.Background(), a.base, &sioclient.Options{Token: token(t, a.user, a.user), LocalIP: a.ip})
				if err != nil {
					return err
				}
				defer c.Drop()
				socks = append(socks, c)
			}
			for i := range 4 {
				raw, err := socks[i%2].EmitAck(timeout(t, 5*time.Second), schemas.EventJoinRoom, map[string]string{"roomId": fmt.Sprintf("%s-r%d", a.user, i)})
				if err != nil {
					return err
				}
				var ack schemas.Ack
				_ = json.Unmarshal(raw, &ack)
				if i < 3 && !ack.OK {
					return fmt.Errorf("join %d of 3 allowed refused: %s", i+1, raw)
				}
				if i == 3 && (ack.OK || ack.Error.Code != schemas.CodeTooManyRooms) {
					return fmt.Errorf("4th room of a user over two sockets (MAX_ROOMS_PER_USER=3): %s", raw)
				}
			}
			return nil
		}},
		{"token expires while live", 6 * time.Second, func(t *testing.T, a *attacker) error {
			short := func(user string) string {
				tok, err := auth.Sign(secret, user, user, 2*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				return tok
			}
			stale, err := sioclient.Dial(context.Background(), a.base, &sioclient.Options{Token: short(a.user), LocalIP: a.ip})
			if err != nil {
				return err
			}
			defer stale.Drop()
			fresh, err := sioclient.Dial(context.Background(), a.base, &sioclient.Options{Token: short(a.user + "-r"), LocalIP: a.ip})
			if err != nil {
				return err
			}
			defer fresh.Drop()
			ctx := timeout(t, 6*time.Second)
			if ev, err := fresh.Wait(ctx, schemas.EventError); err != nil || !strings.Contains(string(ev.Args[0]), string(schemas.CodeExpiredToken)) {
				return fmt.Errorf("no expired_token error on the live socket: %v", err)
			}
			if _, err := fresh.EmitAck(ctx, schemas.EventAuthenticate, map[string]string{"token": token(t, a.user+"-r", a.user+"-r")}); err != nil {
				return err
			}
			select {
			case <-stale.Done():
			case <-ctx.Done():
				return errors.New("a socket whose token expired was not disconnected after the grace")
			}
			select {
			case <-fresh.Done():
				return errors.New("a socket that sent a fresh token was disconnected")
			case <-time.After(1500 * time.Millisecond):
			}
			return nil
		}},
		{"recovery without a token", 5 * time.Second, func(t *testing.T, a *attacker) error {
			c, err := sioclient.Dial(context.Background(), a.base, &sioclient.Options{Token: token(t, a.user, a.user), LocalIP: a.ip})
			if err != nil {
				return err
			}
			pid, off := c.PID, c.Offset()
			c.Drop()
			r, err := sioclient.Dial(context.Background(), a.base, &sioclient.Options{PID: pid, Offset: off, LocalIP: a.ip})
			if err != nil {
				return err
			}
			defer r.Drop()
			if r.Recovered {
				return errors.New("the recovery id alone recovered a socket")
			}
			return nil
		}},
	}
}

// dial opens a WebSocket from the attacker's address and reads the
// Engine.IO open packet.
func (a *attacker) dial(t *testing.T) (*websocket.Conn, error) {
	ws, _, err := a.dialRaw(t, 0)
	return ws, err
}

// dialRaw is dial with the TCP connection, whose receive buffer is set to
// rcvbuf bytes when not 0.
func (a *attacker) dialRaw(t *testing.T, rcvbuf int) (*websocket.Conn, net.Conn, error) {
	var conn net.Conn
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: a.ip}, Timeout: 5 * time.Second}
	dialCtx := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err == nil && rcvbuf > 0 {
			_ = c.(*net.TCPConn).SetReadBuffer(rcvbuf)
		}
		conn = c
		return c, err
	}
	url, _ := sioclient.URL(a.base)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, res, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: &http.Transport{DialContext: dialCtx, DisableKeepAlives: true}},
	})
	if err != nil {
		if res != nil {
			return nil, nil, fmt.Errorf("handshake: %d: %w", res.StatusCode, err)
		}
		return nil, nil, err
	}
	t.Cleanup(func() { ws.CloseNow() })
	ws.SetReadLimit(1 << 20)
	if _, open, err := ws.Read(ctx); err != nil || len(open) == 0 || open[0] != '0' {
		return nil, nil, fmt.Errorf("no open packet: %q %v", open, err)
	}
	return ws, conn, nil
}

// dialConnected is dial, then CONNECT with a token of the attacker's user.
func (a *attacker) dialConnected(t *testing.T) (*websocket.Conn, error) {
	ws, err := a.dial(t)
	if err != nil {
		return nil, err
	}
	return ws, a.connect(ws, token(t, a.user, a.user))
}

// connect sends CONNECT with a token and waits for its answer.
func (a *attacker) connect(ws *websocket.Conn, tok string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ws.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `40{"token":%q}`, tok)); err != nil {
		return err
	}
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			return err
		}
		if bytes.HasPrefix(b, []byte("40")) {
			return nil
		}
		if bytes.HasPrefix(b, []byte("44")) {
			return fmt.Errorf("connect refused: %s", b)
		}
	}
}

// closedWithin reads until the server closes the connection, failing if
// that takes longer than d or a frame breaks check.
func closedWithin(ws *websocket.Conn, d time.Duration, check ...func([]byte) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("still open after %s", d)
			}
			return nil
		}
		for _, c := range check {
			if err := c(b); err != nil {
				return err
			}
		}
	}
}

// noEchoOver fails for a frame longer than n bytes: the server must not
// send back what the attacker sent.
func noEchoOver(n int) func([]byte) error {
	return func(b []byte) error {
		if len(b) > n {
			return fmt.Errorf("the server answered with %d bytes (echo?)", len(b))
		}
		return nil
	}
}

func drain(ws *websocket.Conn) {
	for {
		if _, _, err := ws.Read(context.Background()); err != nil {
			return
		}
	}
}

// rssMiB is the resident memory of a process.
func rssMiB(t *testing.T, p *harness.Proc) float64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.PID()))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// redisMiB is Redis's used_memory.
func redisMiB(t *testing.T, rdb redis.UniversalClient) float64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return n / (1 << 20)
		}
	}
	t.Fatal("no used_memory")
	return 0
}
