package connector

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/roomstream/roomstream/connector/protocol"
)

// HTTP long-polling (Engine.IO v4). A polling session is a socket whose
// outbound packets wait in its queue (bounded by SendQueue packets and
// PollBuffer bytes) until the client's pending GET takes them, and whose
// inbound packets arrive in POST bodies. Everything above the Engine.IO
// layer (CONNECT, events, recovery, delivery) is the WebSocket socket's
// code. The session can upgrade to a WebSocket (probe, upgrade packet),
// after which it is an ordinary WebSocket socket.
//
// The Engine.IO session id starts with the id of the connector holding
// the session; a request that reaches another connector is forwarded
// there (forward.go), so no sticky sessions are needed.

const (
	// upgradeTimeout bounds a WebSocket upgrade (the reference's 10 s).
	upgradeTimeout = 10 * time.Second
	// upgradeNoop is how long a GET that arrives during an upgrade is
	// held before it is released with a noop (the reference checks every
	// 100 ms).
	upgradeNoop = 100 * time.Millisecond
	// pollLinger is how long a closed session waits for the GET that
	// carries its last packets and the close packet.
	pollLinger = 5 * time.Second
	// recordSeparator joins packets in a polling body.
	recordSeparator = '\x1e'
)

// pollState is the long-polling side of a socket (nil on WebSocket
// sockets and once the session upgraded).
type pollState struct {
	eid string // the Engine.IO session id

	// Guarded by the socket's qmu.
	getting   bool // a GET is held
	bytes     int64
	upgrading bool // a WebSocket probe answered: GETs are released with a noop
	noopNow   bool // release the held GET with a noop at once
	upgraded  bool // the WebSocket took over: a GET still held gets a noop
	closeSent bool
	pingTaken int64 // unix ns: when a GET last took a ping (pong)

	wake     chan struct{} // a held GET has something to look at (capacity 1)
	closed   chan struct{} // the close packet went out (closed once, under qmu)
	ended    chan struct{} // the session is over (closed by pollClose)
	switched chan struct{} // the WebSocket took over (closed by the upgrade)

	// inMu serializes the handling of inbound packets: POST bodies, then
	// the WebSocket's read loop once upgraded.
	inMu    chanMutex
	posting chanMutex
}

// chanMutex is a mutex that can be tried.
type chanMutex chan struct{}

func newChanMutex() chanMutex { return make(chanMutex, 1) }
func (m chanMutex) lock()     { m <- struct{}{} }
func (m chanMutex) unlock()   { <-m }
func (m chanMutex) tryLock() bool {
	select {
	case m <- struct{}{}:
		return true
	default:
		return false
	}
}
func (p *pollState) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}
func (p *pollState) isClosed() bool {
	select {
	case <-p.ended:
		return true
	default:
		return false
	}
}

// pollHandshake opens a polling session: the GET that carries it gets the
// open packet as the first poll.
func (s *Server) pollHandshake(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeJSONError(w, http.StatusBadRequest, protocol.ErrCodeBadHandshakeMethod, protocol.ErrorMessages[protocol.ErrCodeBadHandshakeMethod])
		return
	}
	if r.URL.Query().Has("j") {
		// JSONP polling (pre-XHR browsers) is not served.
		writeJSONError(w, http.StatusBadRequest, protocol.ErrCodeBadRequest, protocol.ErrorMessages[protocol.ErrCodeBadRequest])
		return
	}
	addr := s.clientAddr(r)
	if !s.admitRequest(w, addr) {
		return
	}
	p := &pollState{
		eid:      s.id + "." + newID(),
		wake:     make(chan struct{}, 1),
		closed:   make(chan struct{}),
		ended:    make(chan struct{}),
		switched: make(chan struct{}),
		inMu:     newChanMutex(),
		posting:  newChanMutex(),
	}
	so := newSocket(s, nil)
	so.poll = p
	so.ip = addr
	so.startTimers()
	s.mu.Lock()
	s.polls[p.eid] = so
	s.mu.Unlock()
	s.conns.Add(1)
	go func() {
		defer s.conns.Done()
		defer s.release()
		s.m.connections.Inc()
		defer s.m.connections.Dec()
		so.run()
		s.mu.Lock()
		if s.polls[p.eid] == so {
			delete(s.polls, p.eid)
		}
		s.mu.Unlock()
	}()
	s.pollGet(w, r, so, p)
}

// pollSession answers a polling request of a session held here.
func (s *Server) pollSession(w http.ResponseWriter, r *http.Request, so *socket, p *pollState) {
	switch r.Method {
	case http.MethodGet:
		s.pollGet(w, r, so, p)
	case http.MethodPost:
		s.pollPost(w, r, so, p)
	default:
		writeJSONError(w, http.StatusBadRequest, protocol.ErrCodeBadRequest, protocol.ErrorMessages[protocol.ErrCodeBadRequest])
	}
}

// pollGet holds a GET until packets are queued (or pingInterval passed,
// or an upgrade needs the poll released), then answers them all.
func (s *Server) pollGet(w http.ResponseWriter, r *http.Request, so *socket, p *pollState) {
	so.qmu.Lock()
	if p.getting {
		so.qmu.Unlock()
		// The reference closes a session that overlaps its GETs.
		so.end(causeTransport, websocket.StatusGoingAway, "overlapping GET")
		writeJSONError(w, http.StatusBadRequest, protocol.ErrCodeBadRequest, protocol.ErrorMessages[protocol.ErrCodeBadRequest])
		return
	}
	if p.closeSent || (so.closed && !p.upgraded) {
		so.qmu.Unlock()
		writeJSONError(w, http.StatusBadRequest, protocol.ErrCodeUnknownSID, protocol.ErrorMessages[protocol.ErrCodeUnknownSID])
		return
	}
	p.getting = true
	hold := s.cfg.PingInterval
	if p.upgrading {
		hold = upgradeNoop
	}
	timer := time.NewTimer(hold)
	defer timer.Stop()
	noop := false
	for len(so.queue) == 0 && !so.closeWanted && !p.noopNow && !p.upgraded && !noop {
		so.qmu.Unlock()
		select {
		case <-p.wake:
		case <-timer.C:
			noop = true
		case <-r.Context().Done():
			// The client dropped its poll: it is gone (closed, or its
			// network broke). As the reference server does, the session
			// ends; the socket is held for recovery.
			so.qmu.Lock()
			p.getting = false
			so.qmu.Unlock()
			so.end(causeTransport, websocket.StatusGoingAway, "poll connection closed")
			return
		}
		so.qmu.Lock()
	}
	var body []byte
	switch {
	case p.upgraded:
		// The WebSocket took over: its queue is not ours any more.
		body = []byte{byte(protocol.EngineNoop)}
	case len(so.queue) > 0:
		n := 0
		for _, b := range so.queue {
			n += len(b) + 1
		}
		body = make([]byte, 0, n+1)
		for i, b := range so.queue {
			if i > 0 {
				body = append(body, recordSeparator)
			}
			body = append(body, b...)
			if len(b) == 1 && b[0] == byte(protocol.EnginePing) {
				p.pingTaken = time.Now().UnixNano()
			}
		}
		clear(so.queue)
		so.queue = so.queue[:0]
		p.bytes = 0
	}
	if so.closeWanted && !p.upgraded {
		if len(body) > 0 {
			body = append(body, recordSeparator)
		}
		body = append(body, byte(protocol.EngineClose))
		if !p.closeSent {
			p.closeSent = true
			close(p.closed)
		}
	}
	if len(body) == 0 {
		body = []byte{byte(protocol.EngineNoop)}
	}
	p.noopNow = false
	p.getting = false
	so.qmu.Unlock()
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(body)
}

// pollPost handles the packets of a POST body.
func (s *Server) pollPost(w http.ResponseWriter, r *http.Request, so *socket, p *pollState) {
	if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/octet-stream") {
		// Binary bodies are Engine.IO v3 (XHR2 binary); v4 sends base64.
		writeJSONError(w, http.StatusBadRequest, protocol.ErrCodeBadRequest, protocol.ErrorMessages[protocol.ErrCodeBadRequest])
		return
	}
	if !p.posting.tryLock() {
		so.end(causeTransport, websocket.StatusGoingAway, "overlapping POST")
		writeJSONError(w, http.StatusBadRequest, protocol.ErrCodeBadRequest, protocol.ErrorMessages[protocol.ErrCodeBadRequest])
		return
	}
	defer p.posting.unlock()
	max := s.cfg.MaxPayload
	if r.ContentLength > max {
		so.end(causeParse, websocket.StatusMessageTooBig, "message too big")
		http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		// A client too slow to send its body (READ_TIMEOUT) is gone.
		so.end(causeTransport, websocket.StatusGoingAway, "")
		s.writeBodyError(w, err)
		return
	}
	if int64(len(body)) > max {
		so.end(causeParse, websocket.StatusMessageTooBig, "message too big")
		http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
		return
	}
	p.inMu.lock()
	ok := !p.isClosed() && !p.upgradedNow(so)
	if ok {
		so.handlePollBody(body)
	}
	p.inMu.unlock()
	if !ok {
		writeJSONError(w, http.StatusBadRequest, protocol.ErrCodeUnknownSID, protocol.ErrorMessages[protocol.ErrCodeUnknownSID])
		return
	}
	w.Header().Set("Content-Type", "text/html")
	_, _ = w.Write([]byte("ok"))
}

func (p *pollState) upgradedNow(so *socket) bool {
	so.qmu.Lock()
	defer so.qmu.Unlock()
	return p.upgraded
}

// handlePollBody handles the packets of one POST body, in order, as the
// WebSocket read loop handles frames; it stops at the first that ends the
// session.
func (so *socket) handlePollBody(body []byte) {
	for len(body) > 0 {
		pkt := body
		if i := bytes.IndexByte(body, recordSeparator); i >= 0 {
			pkt, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		if len(pkt) > 0 && pkt[0] == 'b' {
			// A binary attachment, base64: never used by roomstream's
			// events, skipped like a WebSocket binary frame.
			if so.skipBinary > 0 {
				so.skipBinary--
				continue
			}
			so.end(causeParse, websocket.StatusProtocolError, "unexpected binary packet")
			return
		}
		// The WebSocket's handling, panic recovery included.
		if !so.handleEngine(pkt) {
			return
		}
	}
}

// pollClose ends a polling session whose end was asked for (end): the next GET (or the held
// one) takes what is queued and the close packet; then the session is
// over. A client that stopped answering pings gets nothing.
func (so *socket) pollClose(p *pollState) {
	if so.cause != causePing {
		t := time.NewTimer(pollLinger)
		select {
		case <-p.closed:
		case <-t.C:
		}
		t.Stop()
	}
	so.qmu.Lock()
	so.closed = true
	clear(so.queue)
	so.queue = nil
	p.bytes = 0
	so.qmu.Unlock()
	close(so.writerDone)
	close(p.ended)
}

// pollUpgrade takes a WebSocket opened with the sid of a polling session
// held here: it answers the probe, releases the held GET with a noop,
// waits for the upgrade packet and hands the socket over to the
// WebSocket, which gets what was queued meanwhile.
func (s *Server) pollUpgrade(w http.ResponseWriter, r *http.Request, so *socket, p *pollState) {
	so.qmu.Lock()
	busy := p.upgrading || so.closeWanted || p.upgraded
	if !busy {
		p.upgrading = true
	}
	so.qmu.Unlock()
	if busy {
		writeJSONError(w, http.StatusBadRequest, protocol.ErrCodeBadRequest, protocol.ErrorMessages[protocol.ErrCodeBadRequest])
		return
	}
	abandon := func() {
		so.qmu.Lock()
		p.upgrading, p.noopNow = false, false
		so.qmu.Unlock()
	}
	sb := &smallBuffers{ResponseWriter: w}
	conn, err := websocket.Accept(sb, r, s.acceptOptions())
	if err != nil {
		abandon()
		s.log.Debug("websocket accept (upgrade)", "err", err, "remote", r.RemoteAddr)
		return
	}
	conn.SetReadLimit(s.cfg.MaxPayload)
	ok := false
	defer func() {
		if !ok {
			abandon()
			_ = conn.CloseNow()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), upgradeTimeout)
	defer cancel()
	go func() {
		select {
		case <-p.ended:
			cancel() // the session ended during the upgrade
		case <-ctx.Done():
		}
	}()
	typ, msg, err := conn.Read(ctx)
	if err != nil || typ != websocket.MessageText || string(msg) != "2probe" {
		return
	}
	if err := conn.Write(ctx, websocket.MessageText, []byte("3probe")); err != nil {
		return
	}
	so.qmu.Lock()
	p.noopNow = true
	p.signal()
	so.qmu.Unlock()
	for {
		typ, msg, err = conn.Read(ctx)
		if err != nil || typ != websocket.MessageText {
			return
		}
		if string(msg) == "5" {
			break
		}
		if string(msg) != "6" {
			return
		}
	}
	// Inbound packets still being handled from a POST go first.
	p.inMu.lock()
	so.qmu.Lock()
	if so.closeWanted {
		so.qmu.Unlock()
		p.inMu.unlock()
		return
	}
	p.upgraded = true
	p.signal()
	so.poll = nil
	so.conn, so.wire = conn, sb.wire
	p.bytes = 0
	pending := len(so.queue) > 0
	if pending {
		so.writing = true
	}
	so.qmu.Unlock()
	p.inMu.unlock()
	ok = true
	s.mu.Lock()
	delete(s.polls, p.eid)
	s.mu.Unlock()
	s.m.upgrades.Inc()
	if pending {
		go so.writeLoop()
	}
	close(p.switched)
}

// pollTransport is the polling socket's share of run: it waits for the
// session to end, or for a WebSocket to take over (then it runs the
// WebSocket read loop).
func (so *socket) pollTransport(p *pollState) {
	select {
	case <-p.ended:
	case <-p.switched:
		so.readLoop()
	}
}
