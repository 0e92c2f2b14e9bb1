package connector

import (
	"time"

	"github.com/coder/websocket"

	"github.com/roomstream/roomstream/connector/protocol"
	"github.com/roomstream/roomstream/streams"
)

// A socket's queue of accepted events waiting to be appended (append.go
// appends them): the read loop queues an event and reads on, so that one
// socket's round trips to Redis never hold up its next frames, while its
// events are stored in the order it sent them.

// socketAppends bounds a socket's queue: a client that sends faster than
// Redis takes its events waits (its read loop stops reading, and TCP
// slows the client down), it does not make the connector's memory grow.
const socketAppends = 32

// newAppendReq returns the request that appends the event p asked for
// (event in room; its envelope is for the caller to set), with the append
// window starting now.
func (so *socket) newAppendReq(p *protocol.Packet, event, room string) *appendReq {
	return &appendReq{so: so, ackID: p.ID, hasAck: p.HasID, event: event, room: room,
		deadline: time.Now().Add(appendTimeout),
		bo:       streams.Backoff{Min: 50 * time.Millisecond, Max: 500 * time.Millisecond}}
}

// queueAppend queues r after the socket's earlier events, waiting while
// the queue is full.
func (so *socket) queueAppend(r *appendReq) {
	so.amu.Lock()
	for len(so.appendq) >= socketAppends {
		so.appendedOne.Wait()
	}
	// Queued is as good as accepted for the count of refusals in a row;
	// appendDone hands them on if r is not accepted after all.
	r.refusals, so.refusals = so.refusals, 0
	so.appendq = append(so.appendq, r)
	first := len(so.appendq) == 1
	so.amu.Unlock()
	if first {
		so.srv.submit(r)
	}
}

// awaitAppend waits until r is appended or refused.
func (so *socket) awaitAppend(r *appendReq) {
	so.amu.Lock()
	for !r.done {
		so.appendedOne.Wait()
	}
	so.amu.Unlock()
}

// appendDone ends r, the first event of the socket's queue, with err (nil:
// appended), answers it when it was not, and starts the next.
func (so *socket) appendDone(r *appendReq, err error) {
	s := so.srv
	so.amu.Lock()
	r.done, r.err = true, err
	n := copy(so.appendq, so.appendq[1:])
	so.appendq[n] = nil
	so.appendq = so.appendq[:n]
	var next *appendReq
	if n > 0 {
		next = so.appendq[0]
	}
	tooMany := false
	if err != nil {
		// Not accepted: the refusals before it are still in a row
		// with those after it.
		if next != nil {
			next.refusals += r.refusals
		} else {
			so.refusals += r.refusals
			tooMany = so.refusals >= so.refusalLimit()
		}
	}
	so.appendedOne.Broadcast()
	so.amu.Unlock()
	if next != nil {
		s.submit(next)
	}
	if err == nil {
		s.m.eventsIn.WithLabelValues(r.event, "accepted").Inc()
		return
	}
	if r.hasAck {
		so.pendingAcks.Add(-1)
	}
	so.unavailable(protocol.Packet{ID: r.ackID, HasID: r.hasAck}, r.event, r.room, err)
	if tooMany {
		so.end(causeServer, websocket.StatusPolicyViolation, "too many refused events")
	}
}

// awaitAppends waits until every event the socket queued is appended or
// refused: whatever follows the connection's end (its disconnect from its
// rooms) comes after them.
func (so *socket) awaitAppends() {
	so.amu.Lock()
	for len(so.appendq) > 0 {
		so.appendedOne.Wait()
	}
	so.amu.Unlock()
}
