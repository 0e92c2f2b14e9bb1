package connector

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/connector/protocol"
	"github.com/roomstream/roomstream/streams"
)

// outboundStart returns where to start reading the outbound stream: after
// its last entry (a connector that reuses its id does not deliver old
// traffic again), or from the start of a new stream.
func (s *Server) outboundStart(ctx context.Context) (string, error) {
	last, err := s.c.OutboundTail(ctx, s.id)
	if err != nil {
		return "", err
	}
	if last == "" {
		return "0-0", nil
	}
	s.lastSeen.Store(&last)
	return last, nil
}

// readOutbound delivers the entries workers write to this connector's
// outbound stream to the local sockets they name.
func (s *Server) readOutbound(ctx context.Context, last string) {
	d := newDedup()
	b := newBatch()
	retry := streams.NewBackoff(50*time.Millisecond, 2*time.Second)
	for ctx.Err() == nil {
		msgs, err := s.c.ReadOutbound(ctx, s.id, last, 512, 2*time.Second)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("read outbound stream", "err", err)
				retry.Sleep(ctx)
			}
			continue
		}
		retry.Reset()
		if len(msgs) > 0 {
			s.dispatch(msgs, d, b)
			last = msgs[len(msgs)-1].ID
		}
	}
}

// dedup drops outbound entries produced again by a redelivered inbound
// entry (a worker crashed after writing them, before acknowledging the
// entry; the next owner re-sends the room's last result). A room's
// entries reach a connector in their inbound order (one owner applies a
// partition, a room's entries one after the other), so an entry whose
// source is not newer than the last one seen from its room is a
// duplicate. Rooms of one batch interleave, which is why the mark is per
// room, not per partition. Marks older than dedupKeep are forgotten when
// the map has grown, so it holds the rooms active lately.
type dedup struct {
	last  map[string]streams.ID
	sweep int // map size that triggers the next sweep
}

// dedupKeep is how long a room's mark is kept at least: far longer than a
// redelivery takes (claim idle time plus lease expiry, seconds).
const dedupKeep = time.Hour

func newDedup() *dedup { return &dedup{last: map[string]streams.ID{}, sweep: 4096} }

func (d *dedup) fresh(o *streams.Outbound) bool {
	src, err := streams.ParseID(o.Source)
	if err != nil {
		return true
	}
	key := o.Room
	if key == "" {
		key = "#" + strconv.Itoa(o.Partition) // written before rooms were named
	}
	if prev, ok := d.last[key]; ok && !prev.Less(src) {
		return false
	}
	d.last[key] = src
	if len(d.last) >= d.sweep {
		old := src.Time().Add(-dedupKeep)
		for k, id := range d.last {
			if id.Time().Before(old) {
				delete(d.last, k)
			}
		}
		d.sweep = max(4096, 2*len(d.last))
	}
	return true
}

// dispatch delivers one read of the outbound stream. The frames each
// socket gets from it are gathered and written together once every entry
// is looked at (batch): one write per socket per read, in stream order.
// The sockets and rooms are looked up under one hold of s.mu's read lock,
// and lastSeen moves to the read's last entry before it is let go: a
// socket registered meanwhile (a recovery reads lastSeen under the write
// lock) gets every later entry, and catches up on the earlier ones.
func (s *Server) dispatch(msgs []redis.XMessage, d *dedup, b *batch) {
	s.mu.RLock()
	for i := range msgs {
		s.dispatchEntry(&msgs[i], d, b)
	}
	if b.last != nil {
		s.lastSeen.Store(b.last)
	}
	s.mu.RUnlock()
	b.flush(s.m)
}

// dispatchEntry gathers what entry m has for local sockets (s.mu held for
// reading).
func (s *Server) dispatchEntry(m *redis.XMessage, d *dedup, b *batch) {
	id := m.ID
	offset := &id
	b.last = offset
	o, err := streams.DecodeOutbound(m.ID, m.Values)
	if err != nil {
		s.log.Error("skip bad outbound entry", "err", err)
		return
	}
	if !d.fresh(o) {
		s.m.duplicates.Inc()
		return
	}
	if len(o.Messages) > 1 {
		// A removal's $leave comes after the user-left its socket must
		// hear: the room stops counting before the socket can answer it.
		for _, msg := range o.Messages {
			if msg.Event == streams.LeaveEvent {
				for _, sid := range msg.To {
					s.roomLeft(sid, msg.Room)
				}
			}
		}
	}
	for _, msg := range o.Messages {
		switch msg.Event {
		case streams.JoinEvent:
			for _, sid := range msg.To {
				s.members.add(msg.Room, sid)
				s.roomJoined(sid, msg.Room)
			}
			continue
		case streams.LeaveEvent:
			for _, sid := range msg.To {
				s.members.remove(msg.Room, sid)
				if len(o.Messages) == 1 {
					s.roomLeft(sid, msg.Room)
				}
			}
			continue
		case streams.JoinRefusedEvent:
			for _, sid := range msg.To {
				s.joinRefused(sid, msg.Room)
			}
			continue
		case streams.MovedEvent:
			for _, sid := range msg.To {
				s.moved(sid, msg.Body)
			}
			continue
		case streams.DisconnectEvent:
			var body struct {
				Reason string `json:"reason"`
			}
			_ = json.Unmarshal(msg.Body, &body)
			for _, sid := range msg.To {
				so := s.sockets[sid]
				if so != nil {
					b.flushSocket(so) // what it got before goes first
				}
				s.kickSocket(sid, so, body.Reason)
			}
			continue
		}
		if strings.HasPrefix(msg.Event, "$") {
			continue
		}
		// One frame for every recipient.
		frame := buildFrame(msg, *offset)
		n := 0
		if rm := s.members[msg.Room]; msg.Room != "" && rm != nil {
			for i := range rm.list {
				if so := s.memberSocket(&rm.list[i]); so != nil {
					b.add(so, frame, offset)
					n++
				}
			}
		}
		for _, sid := range msg.To {
			so := s.sockets[sid]
			if so == nil {
				continue
			}
			if msg.Event == "" {
				b.addAck(so, frame)
			} else {
				b.add(so, frame, offset)
			}
			n++
		}
		if n > 0 {
			b.count(msg.Event, n)
			b.delivered(o.Accepted, n)
		}
	}
}

// buildFrame encodes one outbound message; events carry the entry id as
// their offset (every socket has a pid: recovery is always on).
func buildFrame(msg streams.Message, offset string) []byte {
	if msg.Event == "" {
		return protocol.AckFrame(msg.AckID, msg.Body)
	}
	return protocol.EventFrame(msg.Event, offset, msg.Body)
}

func roomOf(body []byte) string {
	var v struct {
		RoomID string `json:"roomId"`
	}
	_ = json.Unmarshal(body, &v)
	return v.RoomID
}
