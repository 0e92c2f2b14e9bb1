package streams

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Outbound is one entry of a connector's outbound stream: everything one
// inbound entry produced for the sockets of that connector. One entry per
// target connector, never one per socket.
type Outbound struct {
	ID        string // entry id, set when read; the offset clients see
	Version   int    // stream format of the entry, set when read (format.go)
	Partition int
	Source    string // id of the inbound entry that produced it
	Room      string // that entry's room
	// Accepted is when that entry's event was accepted (Envelope.Accepted;
	// zero when unknown), so that a connector times the delivery without
	// looking the entry up.
	Accepted time.Time
	Messages []Message
}

// Message is one packet for the connector's members of a room (Room set)
// or for listed sockets (To). Connectors keep their own sockets' room
// membership from the $join and $leave messages workers send in the same
// stream, so a room event names the room, never its members: its size
// does not grow with the room.
type Message struct {
	// Event names an event; empty means an acknowledgement (AckID).
	Event string
	AckID int64
	// Body is the single JSON argument.
	Body []byte
	// Room: deliver to every socket of this connector in the room. A
	// message has Room or To; $join and $leave have both.
	Room string
	To   []string // socket ids
}

// Internal outbound events. Events whose name starts with '$' are never
// forwarded to clients.
const (
	// MovedEvent confirms to a connector that a recovered socket is now
	// routed to it in one room (Body: {"roomId","status"}).
	MovedEvent = "$moved"
	// JoinEvent: socket To[0] is in Room from this message on; the
	// connector delivers the room's events to it.
	JoinEvent = "$join"
	// LeaveEvent: socket To[0] is no longer in Room on this connector (it
	// left, disconnected or moved to another connector).
	LeaveEvent = "$leave"
	// JoinRefusedEvent: the join of socket To[0] to Room was refused (the
	// refusal follows): its connector stops counting the room among the
	// socket's rooms. Recovery's catch-up ignores it: the socket was never
	// in the room.
	JoinRefusedEvent = "$refused"
	// DisconnectEvent: the connector closes the sockets To (live or held
	// for recovery), which then leave their rooms (Body:
	// {"reason","roomReason"}). The HTTP API writes it, in an entry of its
	// own that names no room and no source.
	DisconnectEvent = "$disconnect"
)

// Values returns the stream entry fields of o in the current format.
func (o *Outbound) Values() []any { return o.ValuesIn(FormatCurrent) }

// ValuesIn returns the stream entry fields of o in format (FormatPrevious
// or FormatCurrent; see format.go).
func (o *Outbound) ValuesIn(format int) []any {
	v := make([]any, 0, 10+8*len(o.Messages))
	if format >= 2 {
		v = append(v, "v", formatNames[format])
	}
	v = append(v, "p", strconv.Itoa(o.Partition), "src", o.Source, "rm", o.Room)
	if !o.Accepted.IsZero() {
		v = append(v, "at", strconv.FormatInt(o.Accepted.UnixMicro(), 10))
	}
	for i, m := range o.Messages {
		var kind string
		if m.Event == "" {
			kind = "a:" + strconv.FormatInt(m.AckID, 10)
		} else {
			kind = eventKind(m.Event)
		}
		v = append(v, messageField('k', i), kind)
		if len(m.Body) > 0 {
			v = append(v, messageField('d', i), m.Body)
		}
		if m.Room != "" {
			v = append(v, messageField('r', i), m.Room)
		}
		if len(m.To) > 0 {
			v = append(v, messageField('t', i), strings.Join(m.To, ","))
		}
	}
	return v
}

// formatNames are the "v" values of the formats written, made once.
var formatNames = func() (n [FormatCurrent + 1]string) {
	for i := range n {
		n[i] = strconv.Itoa(i)
	}
	return n
}()

// The field names of an entry's first messages, made once.
var messageFields = func() (f [4][8]string) {
	for i, c := range "kdrt" {
		for n := range 8 {
			f[i][n] = string(c) + strconv.Itoa(n)
		}
	}
	return f
}()

// messageField names field kind (k, d, r or t) of message n.
func messageField(kind byte, n int) string {
	if n < 8 {
		switch kind {
		case 'k':
			return messageFields[0][n]
		case 'd':
			return messageFields[1][n]
		case 'r':
			return messageFields[2][n]
		case 't':
			return messageFields[3][n]
		}
	}
	return string(kind) + strconv.Itoa(n)
}

// eventKinds holds the kind field of events seen ("e:" + the name), so
// that the frequent ones are not built for every message; custom events
// of the API are many, so it stops growing at a bound.
var eventKinds sync.Map

const maxEventKinds = 1024

var eventKindCount atomic.Int64

func eventKind(event string) string {
	if k, ok := eventKinds.Load(event); ok {
		return k.(string)
	}
	k := "e:" + event
	if eventKindCount.Load() < maxEventKinds {
		if _, loaded := eventKinds.LoadOrStore(event, k); !loaded {
			eventKindCount.Add(1)
		}
	}
	return k
}

// DecodeOutbound decodes the fields of outbound entry id.
func DecodeOutbound(id string, values map[string]any) (*Outbound, error) {
	s := func(k string) string { v, _ := values[k].(string); return v }
	o := &Outbound{ID: id, Version: 1, Source: s("src"), Room: s("rm")}
	var err error
	if v, ok := values["v"]; ok {
		if o.Version, err = strconv.Atoi(s("v")); err != nil || o.Version < FormatPrevious {
			return nil, fmt.Errorf("streams: outbound entry %s: format %q", id, v)
		}
		if o.Version > FormatCurrent {
			return nil, fmt.Errorf("streams: outbound entry %s: format %d is newer than this build's (%d)", id, o.Version, FormatCurrent)
		}
	}
	if o.Partition, err = strconv.Atoi(s("p")); err != nil {
		return nil, fmt.Errorf("streams: outbound entry %s: partition %q", id, s("p"))
	}
	if at := s("at"); at != "" {
		us, err := strconv.ParseInt(at, 10, 64)
		if err != nil || us < 0 {
			return nil, fmt.Errorf("streams: outbound entry %s: time %q", id, at)
		}
		o.Accepted = time.UnixMicro(us).UTC()
	}
	for i := 0; ; i++ {
		n := strconv.Itoa(i)
		kind, ok := values["k"+n].(string)
		if !ok {
			break
		}
		m := Message{Room: s("r" + n)}
		if d := s("d" + n); d != "" {
			m.Body = []byte(d)
		}
		if t := s("t" + n); t != "" {
			m.To = strings.Split(t, ",")
		}
		switch {
		case strings.HasPrefix(kind, "e:"):
			m.Event = kind[2:]
		case strings.HasPrefix(kind, "a:"):
			if m.AckID, err = strconv.ParseInt(kind[2:], 10, 64); err != nil {
				return nil, fmt.Errorf("streams: outbound entry %s: ack %q", id, kind)
			}
		default:
			return nil, fmt.Errorf("streams: outbound entry %s: kind %q", id, kind)
		}
		if m.Room == "" && len(m.To) == 0 {
			return nil, fmt.Errorf("streams: outbound entry %s: message %d names neither a room nor sockets", id, i)
		}
		o.Messages = append(o.Messages, m)
	}
	return o, nil
}
