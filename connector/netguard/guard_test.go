package netguard

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// server serves a Guard's listener on a loopback port: /who answers the
// request's peer, /hold waits until release is closed, /hijack keeps the
// connection until the test ends.
type server struct {
	g       *Guard
	addr    string
	release chan struct{}
	held    sync.WaitGroup
}

func serve(t *testing.T, cfg Config) *server {
	t.Helper()
	s := &server{g: New(cfg), release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/who", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, r.RemoteAddr) })
	mux.HandleFunc("/hold", func(w http.ResponseWriter, r *http.Request) {
		s.held.Done()
		<-s.release
	})
	var hijacked []net.Conn
	var mu sync.Mutex
	mux.HandleFunc("/hijack", func(w http.ResponseWriter, r *http.Request) {
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\n\r\n")
		mu.Lock()
		hijacked = append(hijacked, c)
		mu.Unlock()
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	s.g.Configure(hs)
	go func() { _ = hs.Serve(s.g.Listen(ln)) }()
	s.addr = ln.Addr().String()
	t.Cleanup(func() {
		close(s.release)
		_ = hs.Close()
		mu.Lock()
		for _, c := range hijacked {
			_ = c.Close()
		}
		mu.Unlock()
	})
	return s
}

// dial opens a connection from a loopback address of its own.
func (s *server) dial(t *testing.T, from string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// get sends a request on c and reads the response's status and body.
func get(t *testing.T, c net.Conn, path string, header ...string) (int, string) {
	t.Helper()
	req := "GET " + path + " HTTP/1.1\r\nHost: x\r\n"
	for _, h := range header {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// waitOpen waits until key has n connections counted.
func (s *server) waitOpen(t *testing.T, key string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.g.Open(key) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d connections counted, want %d", key, s.g.Open(key), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestConnectionsPerAddress: every open connection of an address counts,
// idle or busy; the one past the limit is answered 429 and closed, other
// addresses are not affected, and a closed connection frees its place.
func TestConnectionsPerAddress(t *testing.T) {
	s := serve(t, Config{MaxConnsPerAddr: 2})
	a1 := s.dial(t, "127.0.2.1")
	if code, _ := get(t, a1, "/who"); code != 200 {
		t.Fatalf("first connection: %d", code)
	}
	s.dial(t, "127.0.2.1") // sends nothing: counted all the same
	s.waitOpen(t, "127.0.2.1", 2)
	third := s.dial(t, "127.0.2.1")
	code, body := get(t, third, "/who")
	if code != http.StatusTooManyRequests || !strings.Contains(body, `"message":"Too many connections from this address"`) {
		t.Errorf("third connection: %d %s", code, body)
	}
	if _, err := third.Read(make([]byte, 1)); err == nil {
		t.Error("the refused connection stays open")
	}
	if code, _ := get(t, s.dial(t, "127.0.2.2"), "/who"); code != 200 {
		t.Errorf("another address: %d", code)
	}
	a1.Close()
	s.waitOpen(t, "127.0.2.1", 1)
	if code, _ := get(t, s.dial(t, "127.0.2.1"), "/who"); code != 200 {
		t.Errorf("after one closed: %d", code)
	}
	if s.g.Refused() != 1 {
		t.Errorf("refused %d, want 1", s.g.Refused())
	}
}

// TestRefusedConnectionIsCut: a refused connection that sends nothing is
// closed after the grace, whatever the server's own timeouts.
func TestRefusedConnectionIsCut(t *testing.T) {
	s := serve(t, Config{MaxConnsPerAddr: 1})
	s.dial(t, "127.0.2.3")
	s.waitOpen(t, "127.0.2.3", 1)
	c := s.dial(t, "127.0.2.3")
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(4 * refusedGrace))
	if _, err := c.Read(make([]byte, 1)); err == nil || time.Since(start) > 2*refusedGrace {
		t.Errorf("refused idle connection: %v after %s", err, time.Since(start))
	}
}

// TestHijackedConnectionCounted: a hijacked connection (a WebSocket)
// counts until it closes.
func TestHijackedConnectionCounted(t *testing.T) {
	s := serve(t, Config{MaxConnsPerAddr: 1})
	c := s.dial(t, "127.0.2.4")
	if code, _ := get(t, c, "/hijack"); code != http.StatusSwitchingProtocols {
		t.Fatalf("hijack: %d", code)
	}
	s.waitOpen(t, "127.0.2.4", 1)
	if code, _ := get(t, s.dial(t, "127.0.2.4"), "/who"); code != http.StatusTooManyRequests {
		t.Errorf("beside a hijacked connection: %d", code)
	}
}

// TestTrustedHTTPProxy: a trusted proxy's connections are not its own:
// each request it passes on counts for the client X-Forwarded-For names,
// while it is served.
func TestTrustedHTTPProxy(t *testing.T) {
	s := serve(t, Config{MaxConnsPerAddr: 1, Trust: mustTrust(t, "127.0.3.0/24")})
	s.held.Add(1)
	go func() {
		c := s.dial(t, "127.0.3.1")
		_, _ = io.WriteString(c, "GET /hold HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.7\r\n\r\n")
	}()
	s.held.Wait()
	s.waitOpen(t, "198.51.100.7", 1)
	if n := s.g.Open("127.0.3.1"); n != 0 {
		t.Errorf("the proxy's own connections counted: %d", n)
	}
	p := s.dial(t, "127.0.3.1")
	if code, _ := get(t, p, "/who", "X-Forwarded-For: 198.51.100.7"); code != http.StatusTooManyRequests {
		t.Errorf("second request of a client holding one: %d", code)
	}
	if code, body := get(t, p, "/who", "X-Forwarded-For: 198.51.100.8"); code != 200 || body != "127.0.3.1:"+strings.Split(p.LocalAddr().String(), ":")[1] {
		t.Errorf("another client on the same proxy connection: %d %q", code, body)
	}
	s.waitOpen(t, "198.51.100.8", 0)
}

// TestProxyProtocol: a trusted proxy's PROXY header (v1 or v2) names the
// client, whose connection then counts; an untrusted peer's is refused.
func TestProxyProtocol(t *testing.T) {
	s := serve(t, Config{MaxConnsPerAddr: 1, Trust: mustTrust(t, "127.0.4.1")})
	header := func(v byte, client string) []byte {
		h := proxyproto.HeaderProxyFromAddrs(v, &net.TCPAddr{IP: net.ParseIP(client), Port: 5000}, &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 80})
		b, err := h.Format()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, v := range []byte{1, 2} {
		client := fmt.Sprintf("198.51.100.%d", 10+v)
		c := s.dial(t, "127.0.4.1")
		_, _ = c.Write(header(v, client))
		if code, body := get(t, c, "/who"); code != 200 || !strings.HasPrefix(body, client+":") {
			t.Errorf("v%d: %d %q, want the client's address", v, code, body)
		}
		s.waitOpen(t, client, 1)
		again := s.dial(t, "127.0.4.1")
		_, _ = again.Write(header(v, client))
		if code, _ := get(t, again, "/who"); code != http.StatusTooManyRequests {
			t.Errorf("v%d: a second connection of the client: %d", v, code)
		}
		c.Close()
		s.waitOpen(t, client, 0)
	}
	// Without a header the trusted proxy is an HTTP proxy.
	if code, body := get(t, s.dial(t, "127.0.4.1"), "/who"); code != 200 || !strings.HasPrefix(body, "127.0.4.1:") {
		t.Errorf("no header: %d %q", code, body)
	}
	// From anyone else a PROXY header is refused.
	c := s.dial(t, "127.0.4.2")
	_, _ = c.Write(header(1, "198.51.100.20"))
	if code, _ := get(t, c, "/who"); code != http.StatusBadRequest {
		t.Errorf("untrusted PROXY header: %d", code)
	}
	if n := s.g.Open(Key(netip.MustParseAddr("198.51.100.20"))); n != 0 {
		t.Errorf("untrusted header counted for its client: %d", n)
	}
}
