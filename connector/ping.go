package connector

import (
	"time"

	"github.com/coder/websocket"

	"github.com/roomstream/roomstream/connector/protocol"
)

// ping runs on the socket's ping timer: every PingInterval it queues an
// Engine.IO ping, and PingTimeout later it checks that a pong came back.
func (so *socket) ping() {
	s := so.srv
	so.qmu.Lock()
	if so.timersOff {
		so.qmu.Unlock()
		return
	}
	if so.awaitingPong {
		if so.pongAt.Load() < so.pingSent {
			so.qmu.Unlock()
			so.end(causePing, websocket.StatusGoingAway, "ping timeout")
			return
		}
		so.awaitingPong = false
		so.pingTimer.Reset(s.cfg.PingInterval - s.cfg.PingTimeout)
		so.qmu.Unlock()
		return
	}
	so.pingSent = time.Now().UnixNano()
	so.awaitingPong = true
	if s.cfg.PingTimeout < s.cfg.PingInterval {
		so.pingTimer.Reset(s.cfg.PingTimeout)
	} else {
		so.pingTimer.Reset(s.cfg.PingInterval)
	}
	so.qmu.Unlock()
	so.enqueueRaw(pingFrame)
}

var pingFrame = []byte{byte(protocol.EnginePing)}

// pong records a client's pong. It counts only as the answer to a ping
// the client can have seen: one outstanding on its WebSocket, or taken by
// one of its polls. A pong sent blind keeps nothing alive, so a polling
// client that stops polling is closed within pingInterval + pingTimeout
// of its last GET, as a WebSocket that stops reading is.
func (so *socket) pong() {
	so.qmu.Lock()
	defer so.qmu.Unlock()
	if !so.awaitingPong {
		return
	}
	if p := so.poll; p != nil && p.pingTaken < so.pingSent {
		return
	}
	so.pongAt.Store(time.Now().UnixNano())
}
