package connector

import (
	"net/http"
	"testing"
	"time"
)

// TestPollingBlindPongs: a polling client that stops polling but POSTs
// pongs without having seen a ping is closed within pingInterval +
// pingTimeout, as one that sends nothing is.
func TestPollingBlindPongs(t *testing.T) {
	e := start(t, func(c *Config) { c.PingInterval, c.PingTimeout = 300*time.Millisecond, 200*time.Millisecond })
	c := connectPoll(t, e.base, token(t, "alice", "Alice", time.Minute))
	began := time.Now()
	for time.Since(began) < 3*time.Second {
		if status, _, _ := c.do("POST", "3", nil); status == http.StatusBadRequest {
			if took := time.Since(began); took > 1500*time.Millisecond {
				t.Errorf("closed after %s; want within pingInterval + pingTimeout (500ms) and a ping's period", took)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("a polling session that never polls is kept alive by blind pongs")
}

// TestWebSocketEarlyPong: a pong sent before any ping answers none: the
// client that sends one and nothing more is closed at the ping timeout.
func TestWebSocketEarlyPong(t *testing.T) {
	e := start(t, func(c *Config) { c.PingInterval, c.PingTimeout = 300*time.Millisecond, 200*time.Millisecond })
	ws, began := openWS(t, e)
	if err := ws.Write(waitCtx(t), 1, []byte("3")); err != nil {
		t.Fatal(err)
	}
	ctx := waitCtx(t)
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			break
		}
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("closed after %s; want at the first ping's timeout (500ms)", took)
	}
}

// TestHandshakeRateBehindTrustedProxy: behind a trusted proxy, each
// client has its own handshake budget (CONNECT_RATE), named by
// X-Forwarded-For; the addresses of one IPv6 /64 share one.
func TestHandshakeRateBehindTrustedProxy(t *testing.T) {
	e := start(t, func(c *Config) {
		c.ConnectRate = 1 // burst 2
		c.TrustedProxies = []string{"127.0.0.1"}
	})
	handshake := func(client string) int {
		p := &pollClient{t: t, base: e.base}
		status, _, _ := p.do("GET", "", http.Header{"X-Forwarded-For": {client}})
		return status
	}
	for i, want := range []int{200, 200, 429} {
		if got := handshake("198.51.100.1"); got != want {
			t.Errorf("handshake %d of 198.51.100.1: %d, want %d", i+1, got, want)
		}
	}
	if got := handshake("198.51.100.2"); got != 200 {
		t.Errorf("another client behind the same proxy: %d", got)
	}
	for i, want := range []int{200, 200, 429} {
		if got := handshake("2001:db8:1:2::" + string(rune('a'+i))); got != want {
			t.Errorf("handshake %d from one /64: %d, want %d", i+1, got, want)
		}
	}
	if got := handshake("2001:db8:1:3::a"); got != 200 {
		t.Errorf("the next /64: %d", got)
	}
}

// TestPollingConnectionsCounted: MAX_CONNS_PER_IP counts a polling
// client's connections, its held GET and its POSTs', not its sessions.
func TestPollingConnectionsCounted(t *testing.T) {
	e := start(t, func(c *Config) { c.MaxConnsPerIP, c.PingInterval = 2, 2*time.Second })
	p := openPoll(t, e.base)
	hold := e.rawConn(t, "127.0.6.1")
	_, _ = hold.Write([]byte("GET /socket.io/?EIO=4&transport=polling&sid=" + p.sid + " HTTP/1.1\r\nHost: x\r\n\r\n"))
	post := e.rawConn(t, "127.0.6.1")
	_, _ = post.Write([]byte("POST /socket.io/?EIO=4&transport=polling&sid=" + p.sid + " HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n6"))
	if res, body, err := readResponse(t, post, 5*time.Second); err != nil || res.StatusCode != 200 {
		t.Fatalf("POST beside the held GET: %v %v %s", err, res, body)
	}
	third := e.rawConn(t, "127.0.6.1")
	_, _ = third.Write([]byte("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n"))
	if res, _, err := readResponse(t, third, 5*time.Second); err != nil || res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a third connection of the address: %v %v, want 429", err, res)
	}
	if n := metric(t, e, "roomstream_connector_connections_refused_total"); n != 1 {
		t.Errorf("refusals counted: %v", n)
	}
}
