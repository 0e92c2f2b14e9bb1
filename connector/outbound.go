package connector

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/connector/protocol"
	"github.com/roomstream/roomstream/schemas"
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
		for _, m := range msgs {
			id := m.ID
			s.dispatch(m, d, &id)
			last = id
			s.lastSeen.Store(&id)
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

// members is this connector's view of which of its sockets are in which
// room, kept from the $join and $leave messages of its outbound stream.
// Those come in the same stream, in order, as the room's events, so a
// room event reaches exactly the sockets the room had when the worker
// applied it. Only the outbound reader touches it.
type members map[string]map[string]struct{}

func (m members) add(room, sid string) {
	set := m[room]
	if set == nil {
		set = map[string]struct{}{}
		m[room] = set
	}
	set[sid] = struct{}{}
}

func (m members) remove(room, sid string) {
	if set := m[room]; set != nil {
		delete(set, sid)
		if len(set) == 0 {
			delete(m, room)
		}
	}
}

func (s *Server) dispatch(m redis.XMessage, d *dedup, offset *string) {
	o, err := streams.DecodeOutbound(m.ID, m.Values)
	if err != nil {
		s.log.Error("skip bad outbound entry", "err", err)
		return
	}
	if !d.fresh(o) {
		s.m.duplicates.Inc()
		return
	}
	var now time.Time // read once the entry's first frame is handed over
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
			var b struct {
				Reason string `json:"reason"`
			}
			_ = json.Unmarshal(msg.Body, &b)
			for _, sid := range msg.To {
				s.kick(sid, b.Reason)
			}
			continue
		}
		if strings.HasPrefix(msg.Event, "$") {
			continue
		}
		// One frame for every recipient.
		frame := buildFrame(msg, *offset)
		n := 0
		s.mu.RLock()
		if msg.Room != "" {
			for sid := range s.members[msg.Room] {
				if so := s.sockets[sid]; so != nil {
					so.deliver(frame, offset)
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
				so.pendingAcks.Add(-1)
				so.deliver(frame, nil)
			} else {
				so.deliver(frame, offset)
			}
			n++
		}
		s.mu.RUnlock()
		if n > 0 {
			// A clock read per entry, not per read: a read brings up to
			// hundreds of entries, whose deliveries take long enough to
			// show in the low buckets.
			if !o.Accepted.IsZero() {
				if now.IsZero() {
					now = time.Now()
				}
				s.m.latency.Delivered.SinceN(o.Accepted, now, n)
			}
			name := schemas.MetricName(msg.Event)
			if name == "" {
				name = "ack"
			}
			s.m.eventsOut.WithLabelValues(name).Add(float64(n))
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
