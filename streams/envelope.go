package streams

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/roomstream/roomstream/schemas"
)

// Envelope is one inbound event as it sits in an inbound partition stream:
// what was asked, by whom (from the verified token, never from the
// payload), through which socket and connector, and when it was accepted.
// Stream entries store it as readable fields so that redis-cli and replay
// can audit the log.
type Envelope struct {
	ID          string // stream entry id, set when read
	Version     int
	Type        string // client event or internal command (schemas)
	RoomID      string
	UserID      string
	UserName    string
	SessionID   string
	SocketID    string
	ConnectorID string
	AckID       int64
	HasAck      bool
	// Origin and Seq number the client events of one socket: Origin names
	// the socket's incarnation (a new one on every connection, recovered or
	// not) and Seq counts its events from 1 in the order it sent them. A
	// client library may append an event again when a reply is lost (Redis
	// applied the first XADD, then the connection broke); the workers apply
	// an event only if its Seq is above the last applied one of its Origin
	// in the room. Internal commands have neither.
	Origin string
	Seq    uint64
	Data   []byte // payload JSON
	At     time.Time
	// Reason says why an internal command was issued (user-left reason,
	// lock release reason), or why a connector had a socket leave a room
	// (leave-room: the user-left reason).
	Reason string
	// Target is the new connector of a socket-move and the lock holder of a
	// lock-expire.
	Target string
	// Via says where a command came from when not from a socket:
	// schemas.ViaAPI for the HTTP API (empty for sockets and roomstream's
	// own commands).
	Via string
	// Event is the event name a server-event publishes.
	Event string
}

// Values returns the stream entry fields of e.
func (e *Envelope) Values() []any {
	v := make([]any, 0, 30)
	v = append(v, "v", strconv.Itoa(schemas.Version), "type", e.Type, "room", e.RoomID,
		"user", e.UserID, "name", e.UserName, "session", e.SessionID,
		"socket", e.SocketID, "connector", e.ConnectorID)
	if e.HasAck {
		v = append(v, "ack", strconv.FormatInt(e.AckID, 10))
	}
	if e.Seq > 0 {
		v = append(v, "origin", e.Origin, "seq", strconv.FormatUint(e.Seq, 10))
	}
	if len(e.Data) > 0 {
		v = append(v, "data", string(e.Data))
	}
	if e.Reason != "" {
		v = append(v, "reason", e.Reason)
	}
	if e.Target != "" {
		v = append(v, "target", e.Target)
	}
	if e.Via != "" {
		v = append(v, "via", e.Via)
	}
	if e.Event != "" {
		v = append(v, "event", e.Event)
	}
	at := e.At
	if at.IsZero() {
		at = time.Now()
	}
	return append(v, "at", strconv.FormatInt(at.UnixMilli(), 10))
}

// ErrBadEnvelope marks an entry that cannot be decoded; it goes to the
// dead letters at once, retrying cannot help.
var ErrBadEnvelope = errors.New("streams: bad envelope")

// DecodeEnvelope decodes the fields of stream entry id.
func DecodeEnvelope(id string, values map[string]any) (*Envelope, error) {
	s := func(k string) string { v, _ := values[k].(string); return v }
	e := &Envelope{ID: id, Type: s("type"), RoomID: s("room"), UserID: s("user"), UserName: s("name"),
		SessionID: s("session"), SocketID: s("socket"), ConnectorID: s("connector"),
		Reason: s("reason"), Target: s("target"), Via: s("via"), Event: s("event")}
	var err error
	if e.Version, err = strconv.Atoi(s("v")); err != nil {
		return nil, fmt.Errorf("%w: entry %s: version %q", ErrBadEnvelope, id, s("v"))
	}
	if e.Version > schemas.Version {
		return nil, fmt.Errorf("%w: entry %s: version %d is newer than this build (%d)", ErrBadEnvelope, id, e.Version, schemas.Version)
	}
	if a := s("ack"); a != "" {
		if e.AckID, err = strconv.ParseInt(a, 10, 64); err != nil {
			return nil, fmt.Errorf("%w: entry %s: ack %q", ErrBadEnvelope, id, a)
		}
		e.HasAck = true
	}
	if q := s("seq"); q != "" {
		if e.Seq, err = strconv.ParseUint(q, 10, 64); err != nil || e.Seq == 0 {
			return nil, fmt.Errorf("%w: entry %s: seq %q", ErrBadEnvelope, id, q)
		}
		if e.Origin = s("origin"); !schemas.ValidID(e.Origin) || e.SocketID == "" {
			return nil, fmt.Errorf("%w: entry %s: a numbered event needs a valid origin (got %q) and its socket", ErrBadEnvelope, id, e.Origin)
		}
	}
	if d := s("data"); d != "" {
		e.Data = []byte(d)
	}
	ms, err := strconv.ParseInt(s("at"), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: entry %s: time %q", ErrBadEnvelope, id, s("at"))
	}
	e.At = time.UnixMilli(ms).UTC()
	if e.Type == "" || e.RoomID == "" {
		return nil, fmt.Errorf("%w: entry %s: type and room are required", ErrBadEnvelope, id)
	}
	return e, nil
}

// ISOTime formats t the way every timestamp in a payload is written:
// ISO-8601 in UTC with milliseconds.
func ISOTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
