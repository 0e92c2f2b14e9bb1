package connector

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/connector/protocol"
	"github.com/roomstream/roomstream/streams"
)

// outboundStart returns where to start reading the outbound stream: after
// its last entry (a connector that reuses its id does not replay old
// traffic), or from the start of a new stream.
func (s *Server) outboundStart(ctx context.Context) (string, error) {
	msgs, err := s.c.Redis().XRevRangeN(ctx, s.c.Keys.Outbound(s.id), "+", "-", 1).Result()
	if err != nil {
		return "", err
	}
	if len(msgs) == 0 {
		return "0-0", nil
	}
	last := msgs[0].ID
	s.lastSeen.Store(&last)
	return last, nil
}

// readOutbound delivers the entries workers write to this connector's
// outbound stream to the local sockets they name.
func (s *Server) readOutbound(ctx context.Context, last string) {
	key := s.c.Keys.Outbound(s.id)
	d := newDedup()
	delay := 50 * time.Millisecond
	for ctx.Err() == nil {
		res, err := s.c.Redis().XRead(ctx, &redis.XReadArgs{Streams: []string{key, last}, Count: 512, Block: 2 * time.Second}).Result()
		if err != nil {
			if errors.Is(err, redis.Nil) || ctx.Err() != nil {
				continue
			}
			s.log.Warn("read outbound stream", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(delay):
			}
			delay = min(delay*2, 2*time.Second)
			continue
		}
		delay = 50 * time.Millisecond
		for _, st := range res {
			for _, m := range st.Messages {
				id := m.ID
				s.dispatch(m, d, &id)
				last = id
				s.lastSeen.Store(&id)
			}
		}
	}
}

// dedup drops outbound entries produced again by a redelivered inbound
// entry. Each partition's entries reach a connector in their inbound order
// (one owner applies a partition, sequentially), so an entry whose source
// is not newer than the last one seen from its partition is a duplicate.
type dedup struct{ last map[int]streams.ID }

func newDedup() *dedup { return &dedup{last: map[int]streams.ID{}} }

func (d *dedup) fresh(o *streams.Outbound) bool {
	src, err := streams.ParseID(o.Source)
	if err != nil {
		return true
	}
	if prev, ok := d.last[o.Partition]; ok && !prev.Less(src) {
		return false
	}
	d.last[o.Partition] = src
	return true
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
	for _, msg := range o.Messages {
		if strings.HasPrefix(msg.Event, "$") {
			if msg.Event == streams.MovedEvent {
				for _, sid := range msg.To {
					s.moved(sid, msg.Body)
				}
			}
			continue
		}
		var frame []byte
		for _, sid := range msg.To {
			so := s.socket(sid)
			if so == nil {
				continue
			}
			if frame == nil {
				frame = buildFrame(msg, *offset)
			}
			if msg.Event == "" {
				so.pendingAcks.Add(-1)
				so.deliver(frame, nil)
				s.m.eventsOut.WithLabelValues("ack").Inc()
			} else {
				so.deliver(frame, offset)
				s.m.eventsOut.WithLabelValues(msg.Event).Inc()
			}
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
