package connector

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/coder/websocket"

	"github.com/roomstream/roomstream/connector/protocol"
)

// handleOffStack handles a packet on a short-lived goroutine while the
// read loop waits. Handling runs deep code (JWT checks, JSON decoding,
// Redis calls) whose stack would otherwise stay with the read loop's
// goroutine for the connection's lifetime; the read loop itself only
// needs a small one, which is what an idle connection keeps.
//
// A panic while handling the packet closes this socket (and is logged
// with its stack); the process and the other sockets go on.
func (so *socket) handleOffStack(data []byte) bool {
	done := make(chan bool, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				so.srv.m.panics.Inc()
				so.srv.log.Error("panic while handling a packet: socket closed", "socket", so.sid,
					"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				so.end(causeServer, websocket.StatusInternalError, "internal error")
				done <- false
			}
		}()
		done <- so.handlePacket(data)
	}()
	return <-done
}

// readLoop reads frames until the connection ends.
func (so *socket) readLoop() {
	for {
		typ, data, err := so.conn.Read(context.Background())
		if err != nil {
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
		if typ == websocket.MessageBinary {
			if so.skipBinary > 0 {
				so.skipBinary--
				continue
			}
			so.end(causeParse, websocket.StatusProtocolError, "unexpected binary frame")
			return
		}
		if !so.handleEngine(data) {
			return
		}
	}
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
		return so.handleOffStack(payload)
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
