package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// PacketType is a Socket.IO packet type.
type PacketType byte

const (
	Connect      PacketType = 0
	Disconnect   PacketType = 1
	Event        PacketType = 2
	Ack          PacketType = 3
	ConnectError PacketType = 4
	BinaryEvent  PacketType = 5
	BinaryAck    PacketType = 6
)

// MaxAttachments is the most binary attachments one packet may announce
// (the reference parser's limit).
const MaxAttachments = 10

// maxAckIDDigits bounds ack ids so that they fit an int64 (and JavaScript's
// safe integers).
const maxAckIDDigits = 15

// ErrParse wraps every decoding error.
var ErrParse = errors.New("protocol: invalid socket.io packet")

// reserved are event names a client may not use.
var reserved = map[string]bool{
	"connect": true, "connect_error": true, "disconnect": true,
	"disconnecting": true, "newListener": true, "removeListener": true,
}

// Packet is a decoded Socket.IO packet.
type Packet struct {
	Type        PacketType
	Namespace   string // "/" when absent
	HasID       bool
	ID          int64
	Attachments int
	Data        json.RawMessage // nil when absent
	// Name and Args are an EVENT's name and arguments, split from Data
	// once by Decode (the arguments share Data's bytes).
	Name string
	Args []json.RawMessage
}

func parseErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrParse, fmt.Sprintf(format, args...))
}

// Decode parses the data of an Engine.IO message packet (the text after
// the leading '4') into a Socket.IO packet and checks that its data has the
// shape its type requires.
func Decode(b []byte) (Packet, error) {
	var p Packet
	if len(b) == 0 {
		return p, parseErr("empty packet")
	}
	if b[0] < '0' || b[0] > '6' {
		return p, parseErr("unknown packet type %q", b[0])
	}
	p.Type = PacketType(b[0] - '0')
	i := 1
	if p.Type == BinaryEvent || p.Type == BinaryAck {
		j := i
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j == i || j >= len(b) || b[j] != '-' || j-i > 2 {
			return p, parseErr("bad attachment count")
		}
		n, _ := strconv.Atoi(string(b[i:j]))
		if n > MaxAttachments {
			return p, parseErr("too many attachments (%d)", n)
		}
		p.Attachments = n
		i = j + 1
	}
	p.Namespace = "/"
	if i < len(b) && b[i] == '/' {
		j := bytes.IndexByte(b[i:], ',')
		if j < 0 {
			p.Namespace = string(b[i:])
			i = len(b)
		} else {
			p.Namespace = string(b[i : i+j])
			i += j + 1
		}
	}
	if i < len(b) && b[i] >= '0' && b[i] <= '9' {
		j := i
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j-i > maxAckIDDigits {
			return p, parseErr("ack id too long")
		}
		p.ID, _ = strconv.ParseInt(string(b[i:j]), 10, 64)
		p.HasID = true
		i = j
	}
	if i < len(b) {
		p.Data = json.RawMessage(b[i:])
		if !json.Valid(p.Data) {
			return p, parseErr("data is not valid JSON")
		}
	}
	return p, p.check()
}

func (p *Packet) check() error {
	switch p.Type {
	case Connect:
		if p.HasID {
			return parseErr("CONNECT with an ack id")
		}
		if p.Data != nil && firstByte(p.Data) != '{' {
			return parseErr("CONNECT data must be an object")
		}
	case Disconnect:
		if p.HasID || p.Data != nil {
			return parseErr("DISCONNECT carries no data")
		}
	case Event, BinaryEvent:
		name, args, err := eventArgs(p.Data)
		if err != nil {
			return err
		}
		p.Name, p.Args = name, args
	case Ack, BinaryAck:
		if !p.HasID {
			return parseErr("ACK without an id")
		}
		if firstByte(p.Data) != '[' {
			return parseErr("ACK data must be an array")
		}
	case ConnectError:
		if b := firstByte(p.Data); b != '{' && b != '"' {
			return parseErr("CONNECT_ERROR data must be an object")
		}
	}
	return nil
}

func firstByte(b []byte) byte {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// EventArgs splits the data of an EVENT packet into the event name and its
// arguments. It enforces the reference parser's rules: a non-empty array
// whose first element is a string (numbers are allowed by the protocol but
// roomstream names every event) that is not a reserved name. Decode does
// this already (Packet.Name, Packet.Args); EventArgs is for data from
// elsewhere.
func EventArgs(data json.RawMessage) (string, []json.RawMessage, error) {
	if !json.Valid(data) {
		return "", nil, parseErr("EVENT data is not valid JSON")
	}
	return eventArgs(data)
}

// eventArgs is EventArgs for data known to be valid JSON: the array is
// split by scanning it, without decoding (the elements share data's
// bytes), and a plain name is taken as it is.
func eventArgs(data json.RawMessage) (string, []json.RawMessage, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '[' {
		return "", nil, parseErr("EVENT data must be an array")
	}
	args := splitArray(data)
	if len(args) == 0 {
		return "", nil, parseErr("EVENT data is an empty array")
	}
	first := args[0]
	if first[0] != '"' {
		if first[0] >= '0' && first[0] <= '9' || first[0] == '-' {
			return string(first), args[1:], nil
		}
		return "", nil, parseErr("EVENT name must be a string")
	}
	var name string
	if bytes.IndexByte(first, '\\') < 0 && utf8.Valid(first) {
		name = eventName(first[1 : len(first)-1])
	} else if err := json.Unmarshal(first, &name); err != nil {
		return "", nil, parseErr("EVENT name: %v", err)
	}
	if reserved[name] {
		return "", nil, parseErr("reserved event name %q", name)
	}
	return name, args[1:], nil
}

// eventName returns b as a string: the known event names without an
// allocation.
func eventName(b []byte) string {
	if name, ok := knownEvents[string(b)]; ok {
		return name
	}
	return string(b)
}

// knownEvents are the event names clients send (roomstream's own, so
// that this package stays apart from schemas).
var knownEvents = func() map[string]string {
	m := map[string]string{}
	for _, name := range []string{"file-upload-progress", "file-upload-started", "file-upload-completed",
		"file-upload-failed", "join-room", "leave-room", "lock-room", "unlock-room", "authenticate"} {
		m[name] = name
	}
	return m
}()

// splitArray returns the elements of a valid JSON array, trimmed of
// white space, as slices of it.
func splitArray(arr []byte) []json.RawMessage {
	out := make([]json.RawMessage, 0, 2) // an event's name and payload
	depth, start := 0, -1
	inString := false
	for i := 1; i < len(arr); i++ {
		c := arr[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '"':
			inString = true
		case '[', '{':
			depth++
		case ']', '}':
			if depth == 0 { // the array's own end
				if start >= 0 {
					out = append(out, bytes.TrimRight(arr[start:i], " \t\r\n"))
				}
				return out
			}
			depth--
		case ',':
			if depth == 0 {
				out = append(out, bytes.TrimRight(arr[start:i], " \t\r\n"))
				start = -1
				continue
			}
		}
		if start < 0 {
			start = i
		}
	}
	return out
}

// NoID is AppendHeader's id for a packet without an ack id (ack ids are
// never negative).
const NoID int64 = -1

// AppendHeader appends the Engine.IO message prefix '4', the Socket.IO type
// and the ack id, unless it is NoID (or negative). Namespace "/" is
// implied.
func AppendHeader(dst []byte, t PacketType, id int64) []byte {
	dst = append(dst, byte(EngineMessage), byte('0'+t))
	if id >= 0 {
		dst = strconv.AppendInt(dst, id, 10)
	}
	return dst
}

// ConnectFrame returns the text frame of a successful CONNECT reply. pid is
// omitted when empty (connection state recovery off).
func ConnectFrame(sid, pid string) []byte {
	v := struct {
		SID string `json:"sid"`
		PID string `json:"pid,omitempty"`
	}{sid, pid}
	b, _ := json.Marshal(v)
	return append([]byte("40"), b...)
}

// ConnectErrorFrame returns the text frame of a CONNECT_ERROR for namespace
// ns with a message and optional data that the client sees as
// err.message and err.data.
func ConnectErrorFrame(ns, message string, data any) []byte {
	v := struct {
		Message string `json:"message"`
		Data    any    `json:"data,omitempty"`
	}{message, data}
	b, _ := json.Marshal(v)
	out := []byte("44")
	if ns != "/" && ns != "" {
		out = append(append(out, ns...), ',')
	}
	return append(out, b...)
}

// EventFrame returns a complete EVENT text frame: 42["name",arg...] with
// offset appended as last argument when non-empty (connection state
// recovery). Args must be valid JSON.
func EventFrame(name string, offset string, args ...[]byte) []byte {
	dst := AppendHeader(make([]byte, 0, frameCap(len(name)+len(offset), args)), Event, NoID)
	dst = AppendEventBody(dst, name, args...)
	return CloseEventBody(dst, offset)
}

// frameCap is room for a frame of strings of n bytes and args: one
// allocation for the usual frame (names that need no escaping).
func frameCap(n int, args [][]byte) int {
	n += 16
	for _, a := range args {
		n += len(a) + 1
	}
	return n
}

// AppendEventBody appends `["name",arg,...` without the closing bracket so
// that a per-socket offset can still be added by CloseEventBody.
func AppendEventBody(dst []byte, name string, args ...[]byte) []byte {
	dst = append(dst, '[')
	dst = appendJSONString(dst, name)
	for _, a := range args {
		dst = append(dst, ',')
		dst = append(dst, a...)
	}
	return dst
}

// CloseEventBody ends an event body started by AppendEventBody, adding the
// offset argument when non-empty.
func CloseEventBody(dst []byte, offset string) []byte {
	if offset != "" {
		dst = append(dst, ',')
		dst = appendJSONString(dst, offset)
	}
	return append(dst, ']')
}

// AckFrame returns an ACK text frame: 43<id>[arg,...].
func AckFrame(id int64, args ...[]byte) []byte {
	dst := AppendHeader(make([]byte, 0, frameCap(20, args)), Ack, id)
	dst = append(dst, '[')
	for i, a := range args {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, a...)
	}
	return append(dst, ']')
}

func appendJSONString(dst []byte, s string) []byte {
	if isPlainASCII(s) {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	b, _ := json.Marshal(s)
	return append(dst, b...)
}

func isPlainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}
