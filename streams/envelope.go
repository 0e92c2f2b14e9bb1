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
	Version     int    // stream format of the entry, set when read (format.go)
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
	// At is when the connector accepted the event (or a process issued
	// the command); read back, it holds whole milliseconds, as every
	// timestamp of a payload shows it.
	At time.Time
	// Accepted is At to the microsecond, set when read (the previous
	// release wrote milliseconds only); it times the event's hops
	// (Latency). Writers set At; when Accepted is set, it is the time
	// written.
	Accepted time.Time
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

// Values returns the stream entry fields of e in the current format.
func (e *Envelope) Values() []any { return e.ValuesIn(FormatCurrent) }

// ValuesIn returns the stream entry fields of e in format (FormatPrevious
// or FormatCurrent; see format.go).
func (e *Envelope) ValuesIn(format int) []any {
	v := make([]any, 0, 30)
	v = append(v, "v", strconv.Itoa(format), "type", e.Type, "room", e.RoomID,
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
	at := e.Accepted
	if at.IsZero() {
		at = e.At
	}
	if at.IsZero() {
		at = time.Now()
	}
	us := strconv.FormatInt(at.UnixMicro(), 10)
	if format < 2 {
		return append(v, "at", strconv.FormatInt(at.UnixMicro()/1000, 10), "t", us)
	}
	return append(v, "at", us)
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
	if e.Version > FormatCurrent {
		return nil, fmt.Errorf("%w: entry %s: format %d is newer than this build's (%d)", ErrBadEnvelope, id, e.Version, FormatCurrent)
	}
	if e.Version < FormatPrevious {
		return nil, fmt.Errorf("%w: entry %s: format %d is older than this build reads (%d)", ErrBadEnvelope, id, e.Version, FormatPrevious)
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
	if e.Accepted, err = acceptTime(e.Version, s("at"), s("t")); err != nil {
		return nil, fmt.Errorf("%w: entry %s: %v", ErrBadEnvelope, id, err)
	}
	e.At = time.UnixMilli(e.Accepted.UnixMicro() / 1000).UTC()
	if e.Type == "" || e.RoomID == "" {
		return nil, fmt.Errorf("%w: entry %s: type and room are required", ErrBadEnvelope, id)
	}
	return e, nil
}

// maxMicros bounds the times an entry may hold: past it, microseconds
// since 1970 no longer fit an int64 (year 294,247).
const maxMicros = 1<<63 - 1

// acceptTime reads an entry's accept time: "at" in µs (format 2 on), or
// "at" in ms with, where its writer knew it, the same moment in µs in
// "t" (format 1; a "t" that disagrees with "at" is not trusted).
func acceptTime(format int, at, t string) (time.Time, error) {
	n, err := strconv.ParseInt(at, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("time %q", at)
	}
	if format >= 2 {
		return time.UnixMicro(n).UTC(), nil
	}
	if n > maxMicros/1000 {
		return time.Time{}, fmt.Errorf("time %q out of range", at)
	}
	if us, err := strconv.ParseInt(t, 10, 64); err == nil && us >= 0 && us/1000 == n {
		return time.UnixMicro(us).UTC(), nil
	}
	return time.UnixMilli(n).UTC(), nil
}

// ISOTime formats t the way every timestamp in a payload is written:
// ISO-8601 in UTC with milliseconds.
func ISOTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
