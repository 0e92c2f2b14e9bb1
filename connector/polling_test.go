package connector

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/roomstream/roomstream/infra/testredis"
)

// pollClient speaks Engine.IO long-polling by hand.
type pollClient struct {
	t       *testing.T
	base    string
	sid     string
	pending []string // packets received and not looked at yet
	hs      struct {
		SID          string   `json:"sid"`
		Upgrades     []string `json:"upgrades"`
		PingInterval int      `json:"pingInterval"`
		MaxPayload   int      `json:"maxPayload"`
	}
}

func (c *pollClient) url() string {
	u := c.base + "/socket.io/?EIO=4&transport=polling&t=x"
	if c.sid != "" {
		u += "&sid=" + c.sid
	}
	return u
}

// openPoll does the handshake GET.
func openPoll(t *testing.T, base string) *pollClient {
	t.Helper()
	c := &pollClient{t: t, base: base}
	status, hdr, body := c.do("GET", "", nil)
	if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") || !strings.HasPrefix(body, "0{") {
		t.Fatalf("handshake: %d %q %s", status, hdr.Get("Content-Type"), body)
	}
	if err := json.Unmarshal([]byte(body[1:]), &c.hs); err != nil {
		t.Fatal(err)
	}
	c.sid = c.hs.SID
	return c
}

func (c *pollClient) do(method, body string, hdr http.Header) (int, http.Header, string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, c.url(), strings.NewReader(body))
	if method == "POST" {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s: %v", method, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b)
}

// get polls once and returns the packets.
func (c *pollClient) get() []string {
	c.t.Helper()
	status, _, body := c.do("GET", "", nil)
	if status != 200 {
		c.t.Fatalf("GET: %d %s", status, body)
	}
	return strings.Split(body, "\x1e")
}

func (c *pollClient) post(packets ...string) {
	c.t.Helper()
	status, _, body := c.do("POST", strings.Join(packets, "\x1e"), nil)
	if status != 200 || body != "ok" {
		c.t.Fatalf("POST: %d %s", status, body)
	}
}

// until polls until a packet starts with prefix, answering pings; it
// returns that packet.
func (c *pollClient) until(prefix string) string {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if len(c.pending) == 0 {
			c.pending = c.get()
		}
		for len(c.pending) > 0 {
			p := c.pending[0]
			c.pending = c.pending[1:]
			if p == "2" {
				c.post("3")
			}
			if strings.HasPrefix(p, prefix) {
				return p
			}
		}
	}
	c.t.Fatalf("no packet %q", prefix)
	return ""
}

// connectPoll opens a polling session and authenticates it.
func connectPoll(t *testing.T, base, tok string) *pollClient {
	t.Helper()
	c := openPoll(t, base)
	c.post(`40{"token":"` + tok + `"}`)
	c.until(`40{"sid"`)
	c.until(`42["authentication_successful"`)
	return c
}

func TestPollingSession(t *testing.T) {
	e := start(t, nil)
	c := openPoll(t, e.base)
	if !strings.HasPrefix(c.sid, e.srv.ID()+".") || fmt.Sprint(c.hs.Upgrades) != "[websocket]" || c.hs.PingInterval != 25000 || c.hs.MaxPayload != DefaultMaxPayload {
		t.Fatalf("handshake %+v", c.hs)
	}
	// CONNECT and an event with an ack in one body; the answers come
	// batched with the record separator.
	c.post(`40{"token":"`+token(t, "alice", "Alice", time.Minute)+`"}`, `421["join-room",{"roomId":"poll"}]`)
	var got []string
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < 3 && time.Now().Before(deadline) {
		got = append(got, c.get()...)
	}
	if len(got) < 3 || !strings.HasPrefix(got[0], `40{"sid"`) || !strings.HasPrefix(got[1], `42["authentication_successful"`) || !strings.HasPrefix(got[2], `431[{"ok":true`) {
		t.Fatalf("packets %q", got)
	}
	// Binary attachments come base64-encoded ("b" packets): roomstream
	// refuses events that carry them and skips the attachments, and the
	// session goes on.
	c.post(`451-["join-room",{"_placeholder":true,"num":0}]`, "bAQID", `422["leave-room",{"roomId":"poll"}]`)
	if p := c.until(`42["error"`); !strings.Contains(p, "invalid_payload") {
		t.Errorf("binary event refused with %s", p)
	}
	c.until(`432[{"ok":true`)
	// A binary body is Engine.IO v3: refused.
	if status, _, _ := c.do("POST", "4x", http.Header{"Content-Type": {"application/octet-stream"}}); status != 400 {
		t.Errorf("octet-stream POST: %d, want 400", status)
	}
	// A body over maxPayload: 413, and the session is closed.
	if status, _, _ := c.do("POST", "4"+strings.Repeat("x", DefaultMaxPayload), nil); status != 413 {
		t.Errorf("oversized POST: %d, want 413", status)
	}
	if p := c.until("1"); p != "1" {
		t.Errorf("last packet %q, want the close packet", p)
	}
	if status, _, body := c.do("GET", "", nil); status != 400 || !strings.Contains(body, `"code":1`) {
		t.Errorf("GET after close: %d %s", status, body)
	}
}

// A second GET while one is held closes the session, as the reference
// server does: one of the two gets 400, the other the close packet.
func TestPollingOverlappingGET(t *testing.T) {
	e := start(t, nil)
	c := connectPoll(t, e.base, token(t, "alice", "Alice", time.Minute))
	type answer struct {
		status int
		body   string
	}
	answers := make(chan answer, 2)
	get := func() {
		status, _, body := c.do("GET", "", nil)
		answers <- answer{status, body}
	}
	go get()
	time.Sleep(200 * time.Millisecond) // the first GET is most likely held by now; either order is checked
	go get()
	var refused, closed int
	for range 2 {
		select {
		case a := <-answers:
			switch {
			case a.status == 400 && strings.Contains(a.body, `"code":3`):
				refused++
			case a.status == 200 && strings.HasSuffix(a.body, "1"):
				closed++
			default:
				t.Errorf("GET answered %d %q", a.status, a.body)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("a GET was not answered")
		}
	}
	if refused != 1 || closed != 1 {
		t.Errorf("%d GETs refused and %d closed, want one of each", refused, closed)
	}
}

// A GET is held at most pingInterval; the ping comes on schedule and a
// client that does not answer it is dropped.
func TestPollingHoldAndPingTimeout(t *testing.T) {
	e := start(t, func(c *Config) { c.PingInterval, c.PingTimeout = 400*time.Millisecond, 300*time.Millisecond })
	c := connectPoll(t, e.base, token(t, "alice", "Alice", time.Minute))
	begin := time.Now()
	got := c.get()
	if d := time.Since(begin); d > time.Second || (got[0] != "2" && got[0] != "6") {
		t.Fatalf("GET held %s, got %q; want a ping or noop within pingInterval", d, got)
	}
	c.post("3")
	// Now stop answering: the session ends with a ping timeout.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		status, _, _ := c.do("GET", "", nil)
		if status == 400 {
			return
		}
	}
	t.Fatal("session still open after ignoring pings")
}

// A session whose client does not poll is closed once its buffer is
// full, with a close packet, and its socket can be recovered.
func TestPollingBufferBound(t *testing.T) {
	e := start(t, func(c *Config) {
		c.MaxPayload, c.PollBuffer = 4096, 4096
		c.RateLimit, c.RateBurst = 1000, 1000
	})
	reader := connectPoll(t, e.base, token(t, "bob", "Bob", time.Minute))
	reader.post(`421["join-room",{"roomId":"flood"}]`)
	reader.until(`431[{"ok":true`)
	w := dial(t, e, token(t, "alice", "Alice", time.Minute))
	ack(t, w, "join-room", map[string]any{"roomId": "flood"})
	// bob stops polling; alice's progress events fill his buffer.
	for i := range 100 {
		_ = w.Emit(waitCtx(t), "file-upload-progress", map[string]any{"fileId": "f", "uploadId": "u", "fileName": "x.bin", "roomId": "flood",
			"bytesUploaded": i, "totalBytes": 100, "percentage": i})
	}
	// Alice gets her own events back: once she has the last one, bob's
	// share is queued too (or overflowed).
	for {
		ev, err := w.Wait(waitCtx(t), "file-upload-progress")
		if err != nil {
			t.Fatal(err)
		}
		var p struct{ BytesUploaded int }
		_ = ev.Decode(&p)
		if p.BytesUploaded == 99 {
			break
		}
	}
	got := reader.until("1")
	if got != "1" {
		t.Fatalf("got %q", got)
	}
	if n := metric(t, e, "roomstream_connector_slow_sockets_dropped_total"); n < 1 {
		t.Errorf("slow sockets dropped: %v", n)
	}
}

// The upgrade: probe, noop for the held GET, upgrade packet, then the
// socket lives on the WebSocket with what was queued meanwhile.
func TestPollingUpgrade(t *testing.T) {
	e := start(t, nil)
	c := connectPoll(t, e.base, token(t, "alice", "Alice", time.Minute))
	held := make(chan string, 1)
	go func() { _, _, body := c.do("GET", "", nil); held <- body }()
	time.Sleep(100 * time.Millisecond)
	ws, _, err := websocket.Dial(waitCtx(t), strings.Replace(e.base, "http", "ws", 1)+"/socket.io/?EIO=4&transport=websocket&sid="+c.sid, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if err := ws.Write(waitCtx(t), websocket.MessageText, []byte("2probe")); err != nil {
		t.Fatal(err)
	}
	if _, b, err := ws.Read(waitCtx(t)); err != nil || string(b) != "3probe" {
		t.Fatalf("probe answer %q %v", b, err)
	}
	select {
	case body := <-held:
		if body != "6" {
			t.Fatalf("held GET released with %q, want noop", body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("held GET not released after the probe")
	}
	if err := ws.Write(waitCtx(t), websocket.MessageText, []byte("5")); err != nil {
		t.Fatal(err)
	}
	if err := ws.Write(waitCtx(t), websocket.MessageText, []byte(`421["join-room",{"roomId":"up"}]`)); err != nil {
		t.Fatal(err)
	}
	for {
		_, b, err := ws.Read(waitCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(string(b), `431[{"ok":true`) {
			break
		}
	}
	// The polling transport is gone.
	if status, _, _ := c.do("GET", "", nil); status != 400 {
		t.Errorf("GET after upgrade: %d, want 400", status)
	}
}

// CORS: an allowed origin may read the answers; others are refused.
func TestPollingCORS(t *testing.T) {
	e := start(t, func(c *Config) { c.AllowedOrigins = []string{"app.example.com"} })
	c := &pollClient{t: t, base: e.base}
	status, hdr, _ := c.do("GET", "", http.Header{"Origin": {"https://app.example.com"}})
	if status != 200 || hdr.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Errorf("allowed origin: %d, allow-origin %q", status, hdr.Get("Access-Control-Allow-Origin"))
	}
	status, hdr, _ = c.do("OPTIONS", "", http.Header{"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"POST"}})
	if status != 204 || !strings.Contains(hdr.Get("Access-Control-Allow-Methods"), "POST") {
		t.Errorf("preflight: %d %v", status, hdr)
	}
	status, hdr, body := c.do("GET", "", http.Header{"Origin": {"https://evil.example.net"}})
	if status != 403 || hdr.Get("Access-Control-Allow-Origin") != "" || !strings.Contains(body, `"code":4`) {
		t.Errorf("other origin: %d %q %s", status, hdr.Get("Access-Control-Allow-Origin"), body)
	}
}

// Two connectors, no sticky sessions: every request of a session goes to
// the other connector in turn, which forwards it to the one holding it,
// upgrade included.
func TestPollingForwarded(t *testing.T) {
	rs := testredis.Start(t, nil)
	a := startOn(t, rs, nil)
	b := connectorOn(t, rs)
	c := openPoll(t, a.base)
	c.base = b.base // from now on, every request reaches b
	c.post(`40{"token":"` + token(t, "alice", "Alice", time.Minute) + `"}`)
	c.until(`42["authentication_successful"`)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); c.do("GET", "", nil) }()
	c.post(`421["join-room",{"roomId":"fwd"}]`)
	wg.Wait()
	ws, _, err := websocket.Dial(waitCtx(t), strings.Replace(b.base, "http", "ws", 1)+"/socket.io/?EIO=4&transport=websocket&sid="+c.sid, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	_ = ws.Write(waitCtx(t), websocket.MessageText, []byte("2probe"))
	if _, m, err := ws.Read(waitCtx(t)); err != nil || string(m) != "3probe" {
		t.Fatalf("probe through b: %q %v", m, err)
	}
	_ = ws.Write(waitCtx(t), websocket.MessageText, []byte("5"))
	_ = ws.Write(waitCtx(t), websocket.MessageText, []byte(`422["leave-room",{"roomId":"fwd"}]`))
	for {
		_, m, err := ws.Read(waitCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(string(m), `432[{"ok":true`) {
			break
		}
	}
	if n := metric(t, b, "roomstream_connector_polling_forwarded_total", "result", "ok"); n < 3 {
		t.Errorf("b forwarded %v requests, want at least 3", n)
	}
}
