package connector

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/coder/websocket"

	"github.com/roomstream/roomstream/connector/protocol"
)

// handleMessage handles a Socket.IO packet on the read loop's goroutine:
// the frequent room events are parsed and queued for appending there
// (appendq.go), without a goroutine of their own, and the read loop reads
// on without waiting for Redis. What is rare and deep (CONNECT and
// `authenticate`: JWT checks and Redis round trips; joins and leaves,
// which wait for their append) runs off the read loop's stack (offStack),
// and the frequent path keeps to the stack the read loop started with
// (TestReadLoopKeepsItsStack): Go shrinks a grown stack at garbage
// collection only while its goroutine uses less than a quarter of it,
// which a read loop waiting in coder/websocket for its next frame does
// not, so a grown read loop would keep its larger stack for as long as
// its connection lasts.
//
// A panic while handling the packet closes this socket (and is logged
// with its stack); the process and the other sockets go on.
func (so *socket) handleMessage(data []byte) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			so.panicked(v)
			ok = false
		}
	}()
	return so.handlePacket(data)
}

// offStack runs fn on a short-lived goroutine while the read loop waits
// (handleMessage says why); false when fn panicked.
func (so *socket) offStack(fn func()) bool {
	done := make(chan bool, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				so.panicked(v)
				done <- false
			}
		}()
		fn()
		done <- true
	}()
	return <-done
}

// panicked closes the socket whose packet's handling panicked.
func (so *socket) panicked(v any) {
	so.srv.m.panics.Inc()
	so.srv.log.Error("panic while handling a packet: socket closed", "socket", so.sid,
		"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	so.end(causeServer, websocket.StatusInternalError, "internal error")
}

// readBufs are the buffers messages are read into: one per message being
// handled, not per connection, so that an idle connection holds none.
// Nothing handling keeps refers to them (what is appended or kept is
// copied out of the packet).
var readBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxReadBuf is the largest read buffer put back for reuse.
const maxReadBuf = 64 << 10

// readLoop reads frames until the connection ends.
func (so *socket) readLoop() {
	for {
		typ, r, err := so.conn.Reader(context.Background())
		var buf *[]byte
		var data []byte
		if err == nil {
			buf = readBufs.Get().(*[]byte)
			data, err = readMessage(r, (*buf)[:0])
		}
		if err != nil {
			so.putReadBuf(buf, data)
			switch status := websocket.CloseStatus(err); {
			case status == websocket.StatusNormalClosure || status == websocket.StatusGoingAway:
				so.end(causeClient, websocket.StatusNormalClosure, "")
			case status == websocket.StatusMessageTooBig || strings.Contains(err.Error(), "read limited"):
				so.end(causeParse, websocket.StatusMessageTooBig, "message too big")
			default:
				// Also a connection we closed: the first cause recorded wins.
				so.end(causeTransport, websocket.StatusGoingAway, "")
			}
			return
		}
		ok := true
		switch {
		case typ != websocket.MessageBinary:
			ok = so.handleEngine(data)
		case so.skipBinary > 0:
			so.skipBinary--
		default:
			so.end(causeParse, websocket.StatusProtocolError, "unexpected binary frame")
			ok = false
		}
		so.putReadBuf(buf, data)
		if !ok {
			return
		}
	}
}

// readMessage reads a message to its end into b (grown as needed), as
// io.ReadAll does into a buffer of its own.
func readMessage(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// putReadBuf gives a read buffer back (data: what was read into it).
func (so *socket) putReadBuf(buf *[]byte, data []byte) {
	if buf == nil || cap(data) > maxReadBuf {
		return
	}
	*buf = data[:0]
	readBufs.Put(buf)
}

// handleEngine handles one Engine.IO text packet, from a WebSocket frame
// or a polling body; false ends the connection.
func (so *socket) handleEngine(data []byte) bool {
	et, payload, err := protocol.DecodeEngine(data)
	if err != nil {
		so.end(causeParse, websocket.StatusProtocolError, "bad engine.io packet")
		return false
	}
	switch et {
	case protocol.EnginePong:
		so.pong()
	case protocol.EngineMessage:
		return so.handleMessage(payload)
	case protocol.EngineClose:
		so.end(causeClient, websocket.StatusNormalClosure, "")
		return false
	case protocol.EngineNoop:
	default:
		// open, upgrade, and ping (a v4 client never pings)
		so.end(causeParse, websocket.StatusProtocolError, "unexpected engine.io packet")
		return false
	}
	return true
}
