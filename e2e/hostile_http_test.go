package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/roomstream/roomstream/e2e/harness"
)

// The hostile HTTP suite: requests that stall on purpose, from one
// address of their own, against connector processes whose request
// deadlines are short. Each attack asserts that every stalled request is
// answered or cut within its deadline, and that the connectors' open file
// descriptors of client connections come back to what they were before.

// stalledEnv: 1 s to send a request, 1 s to take a response, 1 s idle
// between requests; no cap on connections per address, so that the
// deadlines alone must cut what stalls.
var stalledEnv = []string{
	"ROOMSTREAM_READ_TIMEOUT", "1s",
	"ROOMSTREAM_WRITE_TIMEOUT", "1s",
	"ROOMSTREAM_IDLE_TIMEOUT", "1s",
	"ROOMSTREAM_PING_INTERVAL", "2s",
	"ROOMSTREAM_PING_TIMEOUT", "1s",
}

const stalledRequests = 150

func TestHostileStalledRequests(t *testing.T) {
	d := deploy(t, 2, 1, false, stalledEnv...)
	a, b := d.connectors[0], d.connectors[1]
	base := map[*harness.Proc]int{a: fds(t, a), b: fds(t, b)}
	backToBaseline := func(what string, within time.Duration) {
		t.Helper()
		for _, p := range []*harness.Proc{a, b} {
			deadline := time.Now().Add(within)
			for fds(t, p) > base[p] {
				if time.Now().After(deadline) {
					t.Errorf("%s: %s holds %d client connections %s after, %d before", what, p.Name, fds(t, p), within, base[p])
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			t.Logf("%s: %s client connections %d, baseline %d (all descriptors %d)", what, p.Name, fds(t, p), base[p], allFDs(t, p))
		}
	}

	t.Run("stalled POSTs", func(t *testing.T) {
		at := stallAttacker{t: t, ip: net.IPv4(127, 0, 3, 1)}
		sids := at.handshakes(a, stalledRequests)
		took := at.stallPosts(a, sids)
		t.Logf("%d stalled POSTs: the last answered or cut after %s (read timeout 1s)", len(sids), took.Round(time.Millisecond))
		if took > 3*time.Second {
			t.Errorf("stalled POSTs held %s, read timeout 1s", took)
		}
		backToBaseline("stalled POSTs", 5*time.Second)
	})
	t.Run("GETs never read", func(t *testing.T) {
		at := stallAttacker{t: t, ip: net.IPv4(127, 0, 3, 2)}
		sids := at.handshakes(a, stalledRequests)
		var conns []net.Conn
		for _, sid := range sids {
			c := at.dial(a, true)
			conns = append(conns, c)
			_, _ = io.WriteString(c, "GET /socket.io/?EIO=4&transport=polling&sid="+sid+" HTTP/1.1\r\nHost: x\r\n\r\n")
		}
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for deadline := time.Now().Add(3 * time.Second); fds(t, a) < stalledRequests; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the connector holds %d of the %d GETs' connections: are they counted?", fds(t, a), stalledRequests)
			}
		}
		// Held pingInterval (2 s), written, then idle 1 s: cut within
		// 5 s, though its client reads nothing.
		backToBaseline("GETs never read", 6*time.Second)
	})
	t.Run("stalled POSTs forwarded", func(t *testing.T) {
		at := stallAttacker{t: t, ip: net.IPv4(127, 0, 3, 3)}
		sids := at.handshakes(a, stalledRequests)
		took := at.stallPosts(b, sids) // sessions held by a, POSTs sent to b
		t.Logf("%d stalled POSTs through another connector: the last answered or cut after %s", len(sids), took.Round(time.Millisecond))
		if took > 3*time.Second {
			t.Errorf("stalled forwarded POSTs held %s, read timeout 1s", took)
		}
		backToBaseline("stalled POSTs forwarded", 5*time.Second)
	})
	for _, p := range []*harness.Proc{a, b} {
		if !p.Running() {
			t.Fatalf("%s died", p.Name)
		}
	}
}

// stallAttacker opens connections from one loopback address.
type stallAttacker struct {
	t  *testing.T
	ip net.IP
}

// dial connects to p; a small receive buffer keeps what the attacker
// does not read in the connector's buffers.
func (at stallAttacker) dial(p *harness.Proc, smallBuffer bool) net.Conn {
	at.t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: at.ip}, Timeout: 5 * time.Second}
	if smallBuffer {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		}
	}
	c, err := d.Dial("tcp", strings.TrimPrefix(p.URL(), "http://"))
	if err != nil {
		at.t.Fatal(err)
	}
	return c
}

// handshakes opens n polling sessions on p and returns their ids.
func (at stallAttacker) handshakes(p *harness.Proc, n int) []string {
	at.t.Helper()
	sids := make([]string, 0, n)
	for range n {
		c := at.dial(p, false)
		_, _ = io.WriteString(c, "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			at.t.Fatalf("handshake: %v", err)
		}
		body, _ := io.ReadAll(res.Body)
		c.Close()
		_, rest, ok := strings.Cut(string(body), `"sid":"`)
		if res.StatusCode != 200 || !ok {
			at.t.Fatalf("handshake: %d %s", res.StatusCode, body)
		}
		sids = append(sids, rest[:strings.IndexByte(rest, '"')])
	}
	return sids
}

// stallPosts sends, for every session, a POST to p announcing 60000
// bytes and sending 10, then waits until each is answered or cut, and
// returns how long the last took.
func (at stallAttacker) stallPosts(p *harness.Proc, sids []string) time.Duration {
	at.t.Helper()
	conns := make([]net.Conn, len(sids))
	for i := range sids {
		conns[i] = at.dial(p, false)
	}
	start := time.Now()
	for i, sid := range sids {
		_, _ = io.WriteString(conns[i], "POST /socket.io/?EIO=4&transport=polling&sid="+sid+" HTTP/1.1\r\nHost: x\r\n"+
			"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: 60000\r\n\r\n42[\"file-u")
	}
	var mu sync.Mutex
	var last time.Duration
	statuses := map[string]int{}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			status := "closed"
			if res, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
				status = strconv.Itoa(res.StatusCode)
				_, _ = io.Copy(io.Discard, res.Body)
			}
			_, _ = io.Copy(io.Discard, c) // until the connector closes it
			mu.Lock()
			defer mu.Unlock()
			last = max(last, time.Since(start))
			statuses[status]++
		}()
	}
	wg.Wait()
	at.t.Logf("answers: %v", statuses)
	if statuses["408"] == 0 {
		at.t.Errorf("no stalled POST was answered 408: %v", statuses)
	}
	return last
}

// fds counts a process's open file descriptors that are connections of
// its clients: sockets on its HTTP port. (Its other descriptors are its
// Redis clients' pools, which grow with the requests it served at once
// and keep their connections for reuse: not what a client holds.)
func fds(t *testing.T, p *harness.Proc) int {
	t.Helper()
	pid := p.PID()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	for _, e := range entries {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
		if inode, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	port := fmt.Sprintf(":%04X", p.Port)
	n := 0
	for _, table := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			// local address, state (0A: listening), inode
			if len(f) > 9 && strings.HasSuffix(f[1], port) && f[3] != "0A" && inodes[f[9]] {
				n++
			}
		}
	}
	return n
}

// allFDs counts all of a process's open file descriptors.
func allFDs(t *testing.T, p *harness.Proc) int {
	t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.PID()))
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}
