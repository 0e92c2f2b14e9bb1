package connector

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// rawConn opens a TCP connection to the harness's server from a loopback
// address of its own (from: "" for 127.0.0.1).
func (h *harness) rawConn(t *testing.T, from string) net.Conn {
	t.Helper()
	if from == "" {
		from = "127.0.0.1"
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readResponse reads one response from c within d.
func readResponse(t *testing.T, c net.Conn, d time.Duration) (*http.Response, string, error) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b), nil
}

// stallPost sends on c the headers of a POST of session sid announcing a
// 60000-byte body, and 10 bytes of it, then reads the answer: its status
// and body, and how long it took.
func stallPost(t *testing.T, c net.Conn, sid string) (int, string, time.Duration) {
	t.Helper()
	began := time.Now()
	_, err := io.WriteString(c, "POST /socket.io/?EIO=4&transport=polling&sid="+sid+" HTTP/1.1\r\nHost: x\r\n"+
		"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: 60000\r\n\r\n42[\"file-u")
	if err != nil {
		t.Fatal(err)
	}
	res, body, err := readResponse(t, c, 5*time.Second)
	if err != nil {
		t.Fatalf("stalled POST unanswered after %s: %v", time.Since(began), err)
	}
	return res.StatusCode, body, time.Since(began)
}

// TestSlowPollBody: a POST whose body stalls is answered 408, in the
// Engine.IO error shape, within READ_TIMEOUT, and its connection closed.
func TestSlowPollBody(t *testing.T) {
	e := start(t, func(c *Config) { c.ReadTimeout = 500 * time.Millisecond })
	p := openPoll(t, e.base)
	c := e.rawConn(t, "")
	status, body, took := stallPost(t, c, p.sid)
	if status != http.StatusRequestTimeout || !strings.Contains(body, `"code":3`) || took > 2*time.Second {
		t.Errorf("stalled POST: %d %s after %s; want 408 within the 500ms read timeout", status, body, took)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the stalled POST's connection stays open")
	}
}

// TestHeldPollOutlivesRequestDeadlines: a GET held for pingInterval is
// answered though pingInterval is longer than READ_TIMEOUT and
// WRITE_TIMEOUT, and the session lives on.
func TestHeldPollOutlivesRequestDeadlines(t *testing.T) {
	e := start(t, func(c *Config) {
		c.ReadTimeout, c.WriteTimeout = 200*time.Millisecond, 200*time.Millisecond
		c.PingInterval, c.PingTimeout = time.Second, time.Second
	})
	c := connectPoll(t, e.base, token(t, "alice", "Alice", time.Minute))
	for range 3 {
		begin := time.Now()
		got := c.get()
		if d := time.Since(begin); got[0] != "2" && got[0] != "6" {
			t.Fatalf("GET held %s answered %q, want a ping or noop", d, got)
		}
		if got[0] == "2" {
			c.post("3")
		}
	}
	c.post(`421["join-room",{"roomId":"held"}]`)
	c.until(`431[{"ok":true`)
}

// TestWebSocketOutlivesRequestDeadlines: once hijacked, a WebSocket keeps
// none of its handshake request's deadlines: it works on, and its close
// frame, written by coder/websocket after the request's write deadline,
// reaches the client.
func TestWebSocketOutlivesRequestDeadlines(t *testing.T) {
	e := start(t, func(c *Config) {
		c.ReadTimeout, c.WriteTimeout = 200*time.Millisecond, 200*time.Millisecond
		c.PingInterval, c.PingTimeout = 300*time.Millisecond, 5*time.Second
		c.ConnectTimeout = time.Second
	})
	cl := dial(t, e, token(t, "alice", "Alice", time.Minute))
	time.Sleep(time.Second)
	if a := ack(t, cl, "join-room", map[string]string{"roomId": "ws"}); !a.OK {
		t.Fatalf("join after the request deadlines passed: %+v", a)
	}
	ws, began := openWS(t, e)
	took, status := closedAfter(t, ws, began, 5*time.Second)
	if status != websocket.StatusPolicyViolation {
		t.Errorf("closed after %s with %v; want the 1008 of the CONNECT timeout", took, status)
	}
}

// TestUnreadPollResponseIsCut: a GET whose response its client never
// reads ends at its write deadline (pingInterval + WRITE_TIMEOUT), and
// its connection with it.
func TestUnreadPollResponseIsCut(t *testing.T) {
	e := start(t, func(c *Config) {
		c.WriteTimeout = 300 * time.Millisecond
		c.PingInterval, c.PingTimeout = 500*time.Millisecond, 5*time.Second
		c.MaxConnsPerIP = 100
		c.SendQueue, c.PollBuffer = 1024, 16<<20
	})
	p := openPoll(t, e.base)
	e.srv.mu.RLock()
	so := e.srv.polls[p.sid]
	e.srv.mu.RUnlock()
	// 12 MiB waiting: more than the kernel's buffers take (a send buffer
	// grows to 4 MiB) for a client whose receive window is closed.
	chunk := []byte("4" + strings.Repeat("x", 16<<10))
	for range 768 {
		so.enqueueRaw(chunk)
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.5.1")}, Control: smallReceiveBuffer}
	c, err := d.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for e.srv.guard.Open("127.0.5.1") != 1 {
		time.Sleep(5 * time.Millisecond)
	}
	began := time.Now()
	_, _ = io.WriteString(c, "GET /socket.io/?EIO=4&transport=polling&sid="+p.sid+" HTTP/1.1\r\nHost: x\r\n\r\n")
	for e.srv.guard.Open("127.0.5.1") != 0 {
		if time.Since(began) > 5*time.Second {
			t.Fatal("the connection of an unread GET is still open after 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if took := time.Since(began); took < 300*time.Millisecond {
		t.Errorf("cut after %s, before its write deadline", took)
	}
	t.Logf("unread GET cut after %s", time.Since(began))
}

// TestSlowlorisIsCutAtReadTimeout: request headers that never end are
// cut at READ_TIMEOUT when it is shorter than the header timeout.
func TestSlowlorisIsCutAtReadTimeout(t *testing.T) {
	e := start(t, func(c *Config) { c.ReadTimeout = 300 * time.Millisecond })
	c := e.rawConn(t, "")
	_, _ = io.WriteString(c, "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n")
	began := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); (ok && ne.Timeout()) || time.Since(began) > 2*time.Second {
		t.Errorf("unfinished headers held %s (%v)", time.Since(began), err)
	}
}

// smallReceiveBuffer keeps a test client's receive window small, so that
// a response it does not read fills the server's buffers soon.
func smallReceiveBuffer(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	if err != nil {
		return err
	}
	return serr
}
