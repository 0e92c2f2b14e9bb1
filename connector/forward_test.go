package connector

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/roomstream/roomstream/infra/testredis"
)

// TestForwardedSlowBody: a stalled POST of a session held by another
// connector is answered 408 by the connector the client reached, within
// its READ_TIMEOUT; nothing of it reaches the holder.
func TestForwardedSlowBody(t *testing.T) {
	rs := testredis.Start(t, nil)
	a := startOn(t, rs, nil)
	b := startWith(t, harnessOptions{redis: rs, tweak: func(c *Config) { c.ReadTimeout = 500 * time.Millisecond }})
	p := openPoll(t, a.base)
	status, body, took := stallPost(t, b.rawConn(t, ""), p.sid)
	if status != http.StatusRequestTimeout || took > 2*time.Second {
		t.Errorf("stalled forwarded POST: %d %s after %s; want 408 within the 500ms read timeout", status, body, took)
	}
	if n := metric(t, b, "roomstream_connector_polling_forwarded_total", "result", "ok"); n != 0 {
		t.Errorf("%v requests reached the holder", n)
	}
}

// TestForwardToSilentPeer: a request of a session whose connector takes
// the connection but never answers is answered 502 within pingInterval
// and the write timeout.
func TestForwardToSilentPeer(t *testing.T) {
	e := start(t, func(c *Config) { c.PingInterval, c.WriteTimeout = 300*time.Millisecond, 200*time.Millisecond })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // taken, never answered
		}
	}()
	if err := e.c.AdvertiseConnector(context.Background(), "silent", ln.Addr().String(), time.Minute); err != nil {
		t.Fatal(err)
	}
	p := &pollClient{t: t, base: e.base, sid: "silent.abc"}
	began := time.Now()
	status, _, body := p.do("GET", "", nil)
	if took := time.Since(began); status != http.StatusBadGateway || took > 2*time.Second {
		t.Errorf("GET of a silent peer's session: %d %s after %s; want 502 within 400ms", status, body, took)
	}
	if n := metric(t, e, "roomstream_connector_polling_forwarded_total", "result", "timeout"); n != 1 {
		t.Errorf("timeouts counted: %v", n)
	}
}

// TestPeerMissesCached: requests naming a connector that advertises no
// address (a dead one's sessions) cost one Redis read per few seconds,
// not one each.
func TestPeerMissesCached(t *testing.T) {
	e := start(t, nil)
	gets := func() int {
		info, err := e.c.Redis().Info(context.Background(), "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(info, "\r\n") {
			if rest, ok := strings.CutPrefix(line, "cmdstat_get:calls="); ok {
				n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
				return n
			}
		}
		return 0
	}
	before := gets()
	p := &pollClient{t: t, base: e.base, sid: "gone.abc"}
	for range 100 {
		if status, _, _ := p.do("GET", "", nil); status != http.StatusBadRequest {
			t.Fatalf("GET of a gone connector's session: %d", status)
		}
	}
	if n := gets() - before; n > 10 {
		t.Errorf("100 requests naming a gone connector read Redis %d times", n)
	}
}
