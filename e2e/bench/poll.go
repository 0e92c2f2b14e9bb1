package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
)

// pollConn is the HTTP long-polling transport of a simulated user
// (--transport polling): a GET always pending, whose packets go to in,
// and one POST per outgoing packet, one at a time.
type pollConn struct {
	client *http.Client
	url    string // with the sid
	in     chan []byte
	ctx    context.Context
	cancel context.CancelFunc
	pmu    sync.Mutex
}

// pollURL is the Engine.IO polling URL of connection idx.
func (sh *shard) pollURL(idx int) string {
	u, _ := url.Parse(sh.cfg.URLs[idx%len(sh.cfg.URLs)])
	u.Path = "/socket.io/"
	u.RawQuery = "EIO=4&transport=polling"
	return u.String()
}

// dialPoll does the handshake and starts polling; the open packet is the
// first packet in.
func dialPoll(ctx context.Context, client *http.Client, base string) (*pollConn, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base, nil)
	if err != nil {
		return nil, err
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	if res.StatusCode != http.StatusOK || !bytes.HasPrefix(body, []byte(`0{"sid":"`)) {
		return nil, fmt.Errorf("handshake: %d %.100s", res.StatusCode, body)
	}
	sid, ok := stringField(body, []byte(`"sid":"`))
	if !ok {
		return nil, fmt.Errorf("handshake without sid: %.100s", body)
	}
	pctx, cancel := context.WithCancel(context.Background())
	p := &pollConn{client: client, url: base + "&sid=" + url.QueryEscape(string(sid)), in: make(chan []byte, 256), ctx: pctx, cancel: cancel}
	p.in <- body
	go p.getLoop()
	return p, nil
}

// getLoop polls until the session ends, then closes in.
func (p *pollConn) getLoop() {
	defer close(p.in)
	for p.ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(p.ctx, http.MethodGet, p.url, nil)
		res, err := p.client.Do(req)
		if err != nil {
			return
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusOK {
			return
		}
		for _, pkt := range bytes.Split(body, []byte{0x1e}) {
			if len(pkt) == 1 && pkt[0] == '1' {
				return // closed by the server
			}
			select {
			case p.in <- pkt:
			case <-p.ctx.Done():
				return
			}
		}
	}
}

var errPollClosed = errors.New("bench: polling session closed")

// read returns the next packet.
func (p *pollConn) read(ctx context.Context) ([]byte, error) {
	select {
	case b, ok := <-p.in:
		if !ok {
			return nil, errPollClosed
		}
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// write posts one packet.
func (p *pollConn) write(ctx context.Context, pkt []byte) error {
	p.pmu.Lock()
	defer p.pmu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(pkt))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	res, err := p.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("POST: %d", res.StatusCode)
	}
	return nil
}

func (p *pollConn) close() { p.cancel() }
