package streams

import (
	"fmt"
	"strconv"
	"strings"
)

// Outbound is one entry of a connector's outbound stream: everything one
// inbound entry produced for the sockets of that connector. One entry per
// target connector, never one per socket.
type Outbound struct {
	ID        string // entry id, set when read; the offset clients see
	Partition int
	Source    string // id of the inbound entry that produced it
	Messages  []Message
}

// Message is one packet for a list of sockets.
type Message struct {
	// Event names an event; empty means an acknowledgement (AckID).
	Event string
	AckID int64
	// Body is the single JSON argument.
	Body []byte
	To   []string // socket ids
}

// Values returns the stream entry fields of o.
func (o *Outbound) Values() []any {
	v := make([]any, 0, 4+6*len(o.Messages))
	v = append(v, "p", strconv.Itoa(o.Partition), "src", o.Source)
	for i, m := range o.Messages {
		n := strconv.Itoa(i)
		kind := "e:" + m.Event
		if m.Event == "" {
			kind = "a:" + strconv.FormatInt(m.AckID, 10)
		}
		v = append(v, "k"+n, kind, "d"+n, string(m.Body), "t"+n, strings.Join(m.To, ","))
	}
	return v
}

// DecodeOutbound decodes the fields of outbound entry id.
func DecodeOutbound(id string, values map[string]any) (*Outbound, error) {
	s := func(k string) string { v, _ := values[k].(string); return v }
	o := &Outbound{ID: id, Source: s("src")}
	var err error
	if o.Partition, err = strconv.Atoi(s("p")); err != nil {
		return nil, fmt.Errorf("streams: outbound entry %s: partition %q", id, s("p"))
	}
	for i := 0; ; i++ {
		n := strconv.Itoa(i)
		kind, ok := values["k"+n].(string)
		if !ok {
			break
		}
		m := Message{Body: []byte(s("d" + n))}
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
		o.Messages = append(o.Messages, m)
	}
	return o, nil
}

// MovedEvent is the internal outbound event that confirms to a connector
// that a recovered socket is now routed to it in one room. Events whose
// name starts with '$' are internal: connectors never forward them.
const MovedEvent = "$moved"
