package connector

import (
	"time"

	"github.com/roomstream/roomstream/schemas"
)

// batch gathers what one read of the outbound stream has for each socket,
// so that each socket gets one write per read however many of its entries
// reach it: the sender's acknowledgement and its own copy of the room
// event come in one entry, and under load several entries of one read go
// to the same sockets. A write system call per delivery is most of what a
// delivery costs; per socket and read, it is shared. Only the outbound
// reader uses it.
type batch struct {
	touched []*socket  // sockets with gathered frames, in the order first reached
	free    [][][]byte // frame lists to reuse
	// last is the offset of the last entry dispatched.
	last *string
	// sent counts the packets gathered, by metric name, for eventsOut.
	sent map[string]int
	// timed are the accept times of the gathered frames' events, with how
	// many sockets each goes to, for the delivered hop (observed once the
	// frames are handed over, with one clock read per read).
	timed []timedFrames
}

// timedFrames is a frame of an event accepted at accepted, gathered for n
// sockets.
type timedFrames struct {
	accepted time.Time
	n        int
}

func newBatch() *batch { return &batch{sent: map[string]int{}} }

// Bounds on the frame lists batch keeps for reuse.
const (
	batchFreeLists = 1024
	batchListCap   = 64
)

// add gathers frame for so. offset is the id of the entry it comes from.
func (b *batch) add(so *socket, frame []byte, offset *string) {
	b.gather(so, frame)
	so.outOff = offset
}

// addAck gathers the acknowledgement frame of one of so's events: it
// moves no offset, and its event stops counting as pending once sent.
func (b *batch) addAck(so *socket, frame []byte) {
	b.gather(so, frame)
	so.outAcks++
}

func (b *batch) gather(so *socket, frame []byte) {
	if so.out == nil {
		if n := len(b.free); n > 0 {
			so.out, b.free = b.free[n-1], b.free[:n-1]
		} else {
			so.out = make([][]byte, 0, 8)
		}
		b.touched = append(b.touched, so)
	}
	so.out = append(so.out, frame)
}

// count records n packets of event for eventsOut.
func (b *batch) count(event string, n int) {
	name := schemas.MetricName(event)
	if name == "" {
		name = "ack"
	}
	b.sent[name] += n
}

// delivered records that a frame of an event accepted at accepted (zero:
// unknown, from a release that did not carry it) was gathered for n
// sockets.
func (b *batch) delivered(accepted time.Time, n int) {
	if !accepted.IsZero() {
		b.timed = append(b.timed, timedFrames{accepted, n})
	}
}

// flush writes what was gathered: each socket's frames in one write (or
// to its buffer while it recovers).
func (b *batch) flush(m *metrics) {
	for i, so := range b.touched {
		b.send(so)
		b.touched[i] = nil
	}
	b.touched = b.touched[:0]
	if len(b.timed) > 0 {
		now := time.Now()
		for _, t := range b.timed {
			m.latency.Delivered.SinceN(t.accepted, now, t.n)
		}
		b.timed = b.timed[:0]
	}
	for name, n := range b.sent {
		m.eventsOut.WithLabelValues(name).Add(float64(n))
		delete(b.sent, name)
	}
}

// flushSocket writes what was gathered for so so far (before so is
// kicked: what it was sent goes first).
func (b *batch) flushSocket(so *socket) {
	if so.out == nil {
		return
	}
	b.send(so)
	for i, t := range b.touched {
		if t == so {
			b.touched = append(b.touched[:i], b.touched[i+1:]...)
			break
		}
	}
}

func (b *batch) send(so *socket) {
	so.deliver(so.out, so.outOff)
	if so.outAcks > 0 {
		so.pendingAcks.Add(-int64(so.outAcks))
	}
	if len(b.free) < batchFreeLists && cap(so.out) <= batchListCap {
		clear(so.out) // the frames are not kept alive by a list waiting for reuse
		b.free = append(b.free, so.out[:0])
	}
	so.out, so.outOff, so.outAcks = nil, nil, 0
}
