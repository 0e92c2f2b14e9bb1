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

// handleMessage handles a Socket.IO packet on the read loop's goroutine.
// Handling runs deep code (JWT checks, JSON decoding, Redis calls for
// CONNECT, joins and leaves), so the stack grows while it runs; Go
// shrinks the stacks of goroutines that use little of theirs at garbage
// collection, so an idle connection's read loop gets back to a small one.
// An event to append is queued (appendq.go): handling does not wait for
// Redis, except for a join or leave.
//
// A panic while handling the packet closes this socket (and is logged
// with its stack); the process and the other sockets go on.
func (so *socket) handleMessage(data []byte) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			so.srv.m.panics.Inc()
			so.srv.log.Error("panic while handling a packet: socket closed", "socket", so.sid,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			so.end(causeServer, websocket.StatusInternalError, "internal error")
			ok = false
		}
	}()
	return so.handlePacket(data)
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
