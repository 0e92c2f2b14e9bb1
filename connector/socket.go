package connector

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/roomstream/roomstream/connector/auth"
	"github.com/roomstream/roomstream/connector/protocol"
)

// socket is one client connection: one Engine.IO session carrying the
// Socket.IO main namespace.
type socket struct {
	srv  *Server
	conn *websocket.Conn // nil while the socket is polling (set under qmu on upgrade)
	wire *wireWriter     // batches the writer's frames into one write (nil in tests that build sockets by hand, and while polling)
	// poll is the HTTP long-polling transport, nil on a WebSocket (read
	// and written under qmu once the socket runs).
	poll *pollState

	// Set by the read loop only.
	sid       string // Socket.IO id, "" until CONNECT
	pid       string // private id for connection state recovery
	connected bool
	authed    bool
	ident     auth.Identity
	session   string
	rooms     socketRooms // guarded by its own mutexes (rooms.go)
	// origin and seq number the events this socket appends (see
	// streams.Envelope), so that an append repeated by the Redis client
	// is applied once. origin is new for every socket, recovered or not.
	origin     string
	seq        uint64
	skipBinary int
	limiter    *rate.Limiter
	// connectTimer closes a connection that sends no CONNECT in time;
	// authTimer one that connected without a token and never authenticates.
	connectTimer *time.Timer
	authTimer    *time.Timer

	// Outbound frames wait in queue (at most SendQueue of them) for the
	// writer goroutine (writeLoop), which runs only while there is something
	// to write. qmu also guards the ping timer's state.
	qmu          sync.Mutex
	queue        [][]byte
	qbytes       int  // bytes waiting for the writer: in queue and in the wire buffer
	qwire        int  // frames in the wire buffer that a direct write left to the writer
	writing      bool // a writer goroutine runs
	closeWanted  bool // the connection is ending (end): the writer closes it
	closed       bool // the writer closed it: nothing more is sent
	pingTimer    *time.Timer
	pingSent     int64 // unix ns
	awaitingPong bool
	timersOff    bool
	writerDone   chan struct{} // closed once the writer closed the connection
	pongAt       atomic.Int64
	// tokenGen counts the tokens the socket authenticated with; a token
	// expiry timer acts only for the token it was set for.
	tokenGen   atomic.Uint64
	tokenTimer *time.Timer // guarded by qmu
	// ip is the key of the client's address (per-address limits).
	ip string
	// pendingAcks counts accepted events whose acknowledgement has not
	// reached the socket yet; a draining connector waits for them.
	pendingAcks atomic.Int64
	// offset is the id of the last outbound entry delivered to the socket:
	// the offset argument of events it gets.
	offset atomic.Pointer[string]

	// Accepted events waiting to be appended, in the order the socket
	// sent them; the first is being appended (appendq.go). amu guards
	// them and refusals; appendedOne is signalled as each is done.
	amu         sync.Mutex
	appendedOne sync.Cond
	appendq     []*appendReq
	refusals    int // refused events in a row

	// recovering buffers outbound packets while missed ones are resent.
	mu             sync.Mutex
	recovering     bool
	buffered       [][]byte
	bufferedOffset *string

	// listed tells whether the socket is the one s.sockets lists under
	// its id (guarded by s.mu).
	listed bool

	// The frames of the outbound read being dispatched, gathered for one
	// write (batch; outbound reader only): in stream order, the offset of
	// the last event among them, and how many are acknowledgements.
	out     [][]byte
	outOff  *string
	outAcks int

	// superseded is set when a recovery of the same socket took over this
	// connection (the client reconnected before we saw the old one drop).
	superseded atomic.Bool
	// kicked is set by an operator's disconnect (HTTP API): whatever
	// ended the connection, the socket leaves its rooms at once.
	kicked atomic.Bool

	closeOnce   sync.Once
	cause       closeCause
	closeCode   websocket.StatusCode
	closeReason string
}

func newSocket(s *Server, conn *websocket.Conn) *socket {
	so := &socket{
		srv: s, conn: conn,
		origin:     newOrigin(),
		writerDone: make(chan struct{}),
		limiter:    rate.NewLimiter(rate.Limit(s.cfg.RateLimit), s.cfg.RateBurst),
	}
	so.appendedOne.L = &so.amu
	so.pongAt.Store(time.Now().UnixNano())
	so.offset.Store(s.lastSeen.Load())
	return so
}

// run serves the connection until it ends, then settles the socket's fate:
// a client that said goodbye leaves its rooms now; a dropped one is held
// for the recovery window.
func (so *socket) run() {
	s := so.srv
	hs := protocol.Handshake{
		SID:          newID(),
		PingInterval: s.cfg.PingInterval.Milliseconds(),
		PingTimeout:  s.cfg.PingTimeout.Milliseconds(),
		MaxPayload:   s.cfg.MaxPayload,
	}
	poll := so.poll
	if poll != nil {
		hs.SID, hs.Upgrades = poll.eid, []string{"websocket"}
	}
	if so.connectTimer == nil {
		so.startTimers()
	}
	so.enqueueRaw(protocol.OpenPacket(hs))
	if poll != nil {
		so.pollTransport(poll)
	} else {
		so.readLoop()
	}
	so.cancelTimers()
	so.finishWrites()
	so.closeNow()
	s.m.closes.WithLabelValues(causeNames[so.cause]).Inc()
	so.awaitAppends()
	s.settle(so)
}

// startTimers starts the CONNECT timeout and the pings. A polling
// session's are started before the session is published: its requests
// come on other goroutines, which find it through the server's map and
// may handle its CONNECT at once.
func (so *socket) startTimers() {
	s := so.srv
	so.connectTimer = time.AfterFunc(s.cfg.ConnectTimeout, func() {
		so.end(causeServer, websocket.StatusPolicyViolation, "no Socket.IO CONNECT in time")
	})
	so.qmu.Lock()
	so.pingTimer = time.AfterFunc(s.cfg.PingInterval, so.ping)
	so.qmu.Unlock()
}

func (so *socket) cancelTimers() {
	so.connectTimer.Stop()
	if so.authTimer != nil {
		so.authTimer.Stop()
	}
	so.qmu.Lock()
	so.timersOff = true
	so.pingTimer.Stop()
	if so.tokenTimer != nil {
		so.tokenTimer.Stop()
	}
	so.qmu.Unlock()
}

// finishWrites makes sure the writer closes the connection and waits for
// it (cutting a write that stays blocked).
func (so *socket) finishWrites() {
	so.end(causeTransport, websocket.StatusGoingAway, "")
	select {
	case <-so.writerDone:
	case <-time.After(so.srv.writeTimeout()):
		so.closeNow()
		<-so.writerDone
	}
}

// closeNow closes the WebSocket at once (nothing to do while polling).
func (so *socket) closeNow() {
	so.qmu.Lock()
	c := so.conn
	so.qmu.Unlock()
	if c != nil {
		_ = c.CloseNow()
	}
}

// end records why the connection ends and has the writer close it after
// the frames already queued. The first cause wins (first is true for it).
func (so *socket) end(cause closeCause, code websocket.StatusCode, reason string) (first bool) {
	so.closeOnce.Do(func() {
		so.cause, so.closeCode, so.closeReason = cause, code, reason
		so.qmu.Lock()
		so.closeWanted = true
		if p := so.poll; p != nil {
			// The held GET (or the next one) takes the close packet.
			p.signal()
			so.qmu.Unlock()
			go so.pollClose(p)
			first = true
			return
		}
		start := !so.writing
		so.writing = true
		so.qmu.Unlock()
		if start {
			go so.writeLoop()
		}
		first = true
	})
	return first
}

func (so *socket) closeStatus() (websocket.StatusCode, string) { return so.closeCode, so.closeReason }

// shutdown asks a socket to reconnect elsewhere (connector draining).
func (so *socket) shutdown() {
	so.end(causeDrain, websocket.StatusServiceRestart, "connector restarting")
}

// abort closes the connection at once.
func (so *socket) abort() {
	so.end(causeDrain, websocket.StatusServiceRestart, "connector restarting")
	so.closeNow()
}

// enqueueRaw sends frames, in order: at once, in one system call and
// without blocking, when nothing is queued and no writer runs (the common
// case: no goroutine); otherwise it queues them for the writer. A socket
// whose queue is full is too slow to keep up: it is disconnected (and can
// recover its missed events on reconnect) rather than holding up everyone
// else.
func (so *socket) enqueueRaw(frames ...[]byte) {
	if len(frames) == 0 {
		return
	}
	so.qmu.Lock()
	if so.closed {
		so.qmu.Unlock()
		return
	}
	if !so.writing && !so.closeWanted && so.wire != nil {
		so.writeNow(frames)
		return
	}
	size := 0
	for _, b := range frames {
		size += len(b)
	}
	if so.queueFull(len(frames), size) {
		so.qmu.Unlock()
		so.dropSlow()
		return
	}
	so.queue = append(so.queue, frames...)
	if p := so.poll; p != nil {
		// Polling: the held GET (or the next one) takes it.
		p.bytes += int64(size)
		p.signal()
		so.qmu.Unlock()
		return
	}
	so.qbytes += size
	start := !so.writing
	so.writing = true
	so.qmu.Unlock()
	if start {
		go so.writeLoop()
	}
}

// writeNow is enqueueRaw's direct path, entered with qmu held: one
// non-blocking write of frames. What the kernel does not take stays in
// the wire buffer for the writer goroutine, and counts towards the send
// queue's limits as if queued.
func (so *socket) writeNow(frames [][]byte) {
	so.writing = true // this goroutine is the writer for a moment
	so.qmu.Unlock()
	left, err := so.wire.tryFrames(frames...)
	so.qmu.Lock()
	slow := false
	switch {
	case errors.Is(err, errNoTry):
		// Nothing was taken: first in line, before what others queued
		// meanwhile.
		so.queue = slices.Concat(frames, so.queue)
		for _, b := range frames {
			so.qbytes += len(b)
		}
	case err == nil && left == 0 && len(so.queue) == 0 && !so.closeWanted:
		so.writing = false
		so.qmu.Unlock()
		return
	case err == nil && left > 0:
		so.qbytes += left
		so.qwire = framesLeft(frames, left)
		slow = so.queueFull(0, 0)
	}
	so.qmu.Unlock()
	if err != nil && !errors.Is(err, errNoTry) {
		so.end(causeTransport, websocket.StatusGoingAway, "") // the writer closes
	}
	if slow {
		so.dropSlow()
	}
	go so.writeLoop()
}

// framesLeft counts the frames (of payloads) not wholly written when the
// last left bytes of them were not.
func framesLeft(payloads [][]byte, left int) int {
	n := 0
	for i := len(payloads) - 1; i >= 0 && left > 0; i-- {
		left -= frameSize(len(payloads[i]))
		n++
	}
	return n
}

// queueFull tells whether n more frames of size bytes overflow the send
// queue (caller holds qmu).
func (so *socket) queueFull(n, size int) bool {
	cfg := &so.srv.cfg
	overBytes := cfg.SendQueueBytes > 0 && so.qbytes+size > cfg.SendQueueBytes
	if so.poll != nil {
		overBytes = so.poll.bytes+int64(size) > cfg.PollBuffer
	}
	return len(so.queue)+so.qwire+n > cfg.SendQueue || overBytes
}

// dropSlow disconnects a socket whose send queue overflowed.
func (so *socket) dropSlow() {
	so.qmu.Lock()
	polling := so.poll != nil
	n, bytes := len(so.queue)+so.qwire, so.qbytes
	so.qmu.Unlock()
	if !so.end(causeSlow, websocket.StatusTryAgainLater, "too slow: send queue full") {
		return
	}
	so.srv.m.slowDropped.Inc()
	if polling {
		so.srv.log.Warn("polling session closed: its client polls too slowly to keep up", "socket", so.sid,
			"queue", so.srv.cfg.SendQueue, "bytes", so.srv.cfg.PollBuffer)
		return
	}
	so.srv.log.Warn("socket dropped: too slow to keep up", "socket", so.sid, "queued", n, "bytes", bytes)
	// It does not read what is queued: cut it now rather than after a
	// write deadline (it can recover).
	so.closeNow()
}

// deliver sends the frames an outbound read batch has for the socket, or
// buffers them while a recovery resends what the socket missed. offset,
// when not nil, is the id of the last entry among them.
func (so *socket) deliver(frames [][]byte, offset *string) {
	so.mu.Lock()
	if so.recovering {
		so.buffered = append(so.buffered, frames...)
		if offset != nil {
			so.bufferedOffset = offset
		}
		so.mu.Unlock()
		return
	}
	so.mu.Unlock()
	if offset != nil {
		so.offset.Store(offset)
	}
	so.enqueueRaw(frames...)
}

// emit sends a connector-generated event to this socket only. It carries
// the socket's current offset, so a recovery never resends it.
func (so *socket) emit(event string, body []byte) {
	off := ""
	if so.pid != "" {
		off = *so.offset.Load()
	}
	so.enqueueRaw(protocol.EventFrame(event, off, body))
	so.srv.m.eventsOut.WithLabelValues(event).Inc()
}

func (so *socket) ack(id int64, body []byte) {
	so.enqueueRaw(protocol.AckFrame(id, body))
	so.srv.m.eventsOut.WithLabelValues("ack").Inc()
}

// closeCause says why a connection ended, which decides what happens to
// the socket's rooms.
type closeCause int

const (
	causeTransport closeCause = iota // dropped: keep for recovery
	causeClient                      // the client said goodbye: leave now
	causeServer                      // we disconnected it (41): leave now
	causeDrain                       // connector stopping: recover elsewhere
	causeParse                       // protocol error: keep for recovery
	causeSlow                        // send queue overflow: keep for recovery
	causePing                        // ping timeout: keep for recovery
	causeKicked                      // an operator disconnected the user (HTTP API): leave now
)

var causeNames = map[closeCause]string{
	causeTransport: "transport", causeClient: "client", causeServer: "server",
	causeDrain: "drain", causeParse: "parse_error", causeSlow: "slow", causePing: "ping_timeout",
	causeKicked: "kicked",
}
