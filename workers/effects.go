package workers

import (
	"context"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// effects collects what one entry produces: outbound messages grouped by
// connector (one entry per connector) and idempotent writes to keys
// outside the room's slot.
type effects struct {
	partition int
	source    string
	room      string
	accepted  time.Time // when the entry's event was accepted
	order     []string
	out       map[string]*streams.Outbound
	side      []func(context.Context, redis.Pipeliner) []redis.Cmder
	outcome   Outcome
	// feed says which events the applied-events feed takes (feed.go);
	// fed are those the room heard, at the entry's time.
	feed feedMode
	fed  []streams.FeedItem
	at   time.Time
}

func newEffects(p int, env *streams.Envelope) *effects {
	accepted := env.Accepted
	if accepted.IsZero() {
		accepted = env.At
	}
	return &effects{partition: p, source: env.ID, room: env.RoomID, accepted: accepted, at: env.At, out: make(map[string]*streams.Outbound, 2)}
}

func (e *effects) send(connector string, m streams.Message) {
	o, ok := e.out[connector]
	if !ok {
		o = &streams.Outbound{Partition: e.partition, Source: e.source, Room: e.room, Accepted: e.accepted}
		e.out[connector] = o
		e.order = append(e.order, connector)
	}
	o.Messages = append(o.Messages, m)
}

// broadcast sends event to the room's members on every connector in
// conns (as the room scripts return them: ids joined by streams.ListSep). One
// message per connector names the room; each connector delivers it to
// its own members.
func (e *effects) broadcast(conns, room, event string, body []byte) {
	for conns != "" {
		var conn string
		conn, conns, _ = strings.Cut(conns, streams.ListSep)
		if conn != "" {
			e.send(conn, streams.Message{Event: event, Body: body, Room: room})
		}
	}
	e.outcome.Events = append(e.outcome.Events, event)
	e.keep(event, body)
}

// member tells connector conn that socket sid joined or left room (op is
// streams.JoinEvent or streams.LeaveEvent).
func (e *effects) member(conn, op, sid, room string) {
	if conn != "" {
		e.send(conn, streams.Message{Event: op, Room: room, To: []string{sid}})
	}
}

// reply answers the sender: with an ack when it asked for one, else with
// an `error` event on refusal (and nothing on plain success).
func (e *effects) reply(env *streams.Envelope, ack schemas.Ack) {
	if env.SocketID == "" || env.ConnectorID == "" {
		return
	}
	if env.HasAck {
		e.send(env.ConnectorID, streams.Message{AckID: env.AckID, Body: mustJSON(ack), To: []string{env.SocketID}})
		return
	}
	if ack.Error != nil {
		e.send(env.ConnectorID, streams.Message{Event: schemas.EventError, Body: mustJSON(ack.Error), To: []string{env.SocketID}})
	}
}

// okAck is the acknowledgement of a plain success, encoded once.
var okAck = mustJSON(schemas.Ack{OK: true})

// replyOK acknowledges a success when the sender asked for it.
func (e *effects) replyOK(env *streams.Envelope) {
	if env.HasAck && env.SocketID != "" && env.ConnectorID != "" {
		e.send(env.ConnectorID, streams.Message{AckID: env.AckID, Body: okAck, To: []string{env.SocketID}})
	}
}

func (e *effects) refuse(env *streams.Envelope, err *schemas.Error) {
	e.outcome.Status, e.outcome.Message = string(err.Code), err.Message
	e.reply(env, schemas.Ack{Error: err.WithEvent(env.Type, env.RoomID)})
}
