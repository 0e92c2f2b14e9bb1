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
