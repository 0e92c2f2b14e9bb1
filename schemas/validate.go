package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"unicode"
	"unicode/utf8"
)

// Limits on payload fields.
const (
	MaxIDLen     = 128
	MaxNameLen   = 255
	MaxReasonLen = 500
	MaxFileSize  = 1 << 53 // largest integer a JavaScript number holds exactly
)

// Command is a validated client room command: its normalized payload and
// the room it acts on.
type Command struct {
	Event  string
	RoomID string
	// Payload is a pointer to the event's payload type, with UserID set to
	// the authenticated user.
	Payload any
	// Data is Payload encoded as JSON: what goes into the stream.
	Data []byte
}

// required lists the fields each room event must carry (userId is never
// required: it comes from the token, and a payload's copy must match it).
var required = map[string][]string{
	EventJoinRoom:            {"roomId"},
	EventLeaveRoom:           {"roomId"},
	EventLockRoom:            {"roomId"},
	EventUnlockRoom:          {"roomId"},
	EventFileUploadStarted:   {"fileId", "fileName", "roomId", "size"},
	EventFileUploadProgress:  {"fileId", "uploadId", "fileName", "roomId", "bytesUploaded", "totalBytes", "percentage"},
	EventFileUploadCompleted: {"fileId", "fileName", "roomId", "size"},
	EventFileUploadFailed:    {"fileId", "roomId"},
}

// ParseCommand validates the JSON payload of client room event `event` sent
// by the authenticated user userID. A payload whose userId differs from
// userID is refused with CodeForbidden; a missing userId is filled in.
func ParseCommand(event string, raw []byte, userID string) (*Command, *Error) {
	if event == EventFileUploadProgress {
		if cmd := ParsePlainProgress(raw, userID); cmd != nil {
			return cmd, nil
		}
		// Refused: the general path says why, in its words.
	}
	return parseCommand(event, raw, userID)
}

// ParsePlainProgress is ParseCommand for a file-upload-progress payload
// in the plain form clients send, without reflection and on a small
// stack; nil when it cannot judge the payload (ParseCommand then does,
// and says why it refuses one).
func ParsePlainProgress(raw []byte, userID string) *Command { return parseProgress(raw, userID) }

// parseCommand is ParseCommand for every event.
func parseCommand(event string, raw []byte, userID string) (*Command, *Error) {
	if !IsRoomEvent(event) {
		return nil, NewError(CodeUnknownEvent, "unknown event")
	}
	if err := checkFields(raw, required[event]); err != nil {
		return nil, err
	}
	var (
		p      any
		roomID string
		verr   *Error
	)
	switch event {
	case EventJoinRoom:
		v := &JoinRoomPayload{}
		if verr = decode(raw, v); verr == nil {
			verr = firstErr(CheckID("roomId", v.RoomID), checkUser(&v.UserID, userID))
		}
		p, roomID = v, v.RoomID
	case EventLeaveRoom:
		v := &LeaveRoomPayload{}
		if verr = decode(raw, v); verr == nil {
			verr = firstErr(CheckID("roomId", v.RoomID), checkUser(&v.UserID, userID))
		}
		p, roomID = v, v.RoomID
	case EventLockRoom:
		v := &LockRoomPayload{}
		if verr = decode(raw, v); verr == nil {
			verr = firstErr(CheckID("roomId", v.RoomID), checkUser(&v.UserID, userID),
				checkText("reason", v.Reason, MaxReasonLen, false))
		}
		p, roomID = v, v.RoomID
	case EventUnlockRoom:
		v := &UnlockRoomPayload{}
		if verr = decode(raw, v); verr == nil {
			verr = firstErr(CheckID("roomId", v.RoomID), checkUser(&v.UserID, userID),
				checkText("reason", v.Reason, MaxReasonLen, false))
		}
		p, roomID = v, v.RoomID
	case EventFileUploadStarted:
		v := &FileUploadStartedPayload{}
		if verr = decode(raw, v); verr == nil {
			v.UserName = "" // set by the server only
			if v.UploadID == "" {
				v.UploadID = v.FileID
			}
			verr = firstErr(CheckID("roomId", v.RoomID), checkUser(&v.UserID, userID),
				CheckID("fileId", v.FileID), CheckID("uploadId", v.UploadID),
				checkText("fileName", v.FileName, MaxNameLen, true),
				CheckSize("size", v.Size), checkMime(v.MimeType))
		}
		p, roomID = v, v.RoomID
	case EventFileUploadProgress:
		v := &FileUploadProgressPayload{}
		if verr = decode(raw, v); verr == nil {
			v.UserName = ""
			verr = firstErr(CheckID("roomId", v.RoomID), checkUser(&v.UserID, userID),
				CheckID("fileId", v.FileID), CheckID("uploadId", v.UploadID),
				checkText("fileName", v.FileName, MaxNameLen, true),
				CheckSize("bytesUploaded", v.BytesUploaded), CheckSize("totalBytes", v.TotalBytes),
				checkProgress(v))
		}
		p, roomID = v, v.RoomID
	case EventFileUploadCompleted:
		v := &FileUploadCompletedPayload{}
		if verr = decode(raw, v); verr == nil {
			if v.UploadID == "" {
				v.UploadID = v.FileID
			}
			verr = firstErr(CheckID("roomId", v.RoomID), checkUser(&v.UserID, userID),
				CheckID("fileId", v.FileID), CheckID("uploadId", v.UploadID),
				checkText("fileName", v.FileName, MaxNameLen, true),
				CheckSize("size", v.Size), checkMime(v.MimeType), checkOptID("parentId", v.ParentID))
		}
		p, roomID = v, v.RoomID
	case EventFileUploadFailed:
		v := &FileUploadFailedPayload{}
		if verr = decode(raw, v); verr == nil {
			v.UserName, v.FailedAt = "", ""
			if v.UploadID == "" {
				v.UploadID = v.FileID
			}
			verr = firstErr(CheckID("roomId", v.RoomID), checkUser(&v.UserID, userID),
				CheckID("fileId", v.FileID), CheckID("uploadId", v.UploadID),
				checkText("reason", v.Reason, MaxReasonLen, false))
		}
		p, roomID = v, v.RoomID
	}
	if verr != nil {
		return nil, verr.WithEvent(event, roomID)
	}
	data, err := json.Marshal(p)
	if err != nil {
		return nil, Errorf(CodeInvalidPayload, "payload cannot be encoded: %v", err).WithEvent(event, roomID)
	}
	return &Command{Event: event, RoomID: roomID, Payload: p, Data: data}, nil
}

var progressKeys = func() [][]byte {
	var out [][]byte
	for _, k := range required[EventFileUploadProgress] {
		out = append(out, []byte(`"`+k+`":`))
	}
	return out
}()

// progressWire is a file-upload-progress payload whose required fields
// are pointers, so that one decode tells a missing (or null) field from a
// zero one.
type progressWire struct {
	FileID                 *string  `json:"fileId"`
	UploadID               *string  `json:"uploadId"`
	FileName               *string  `json:"fileName"`
	RoomID                 *string  `json:"roomId"`
	UserID                 string   `json:"userId"`
	BytesUploaded          *int64   `json:"bytesUploaded"`
	TotalBytes             *int64   `json:"totalBytes"`
	Percentage             *float64 `json:"percentage"`
	UploadSpeed            *float64 `json:"uploadSpeed"`
	EstimatedTimeRemaining *float64 `json:"estimatedTimeRemaining"`
	Seq                    *int64   `json:"seq"`
	SentAt                 *int64   `json:"sentAt"`
}

// parseProgress is ParseCommand for the frequent event, in one decode
// instead of two (JSON decoding is much of what the connector does for
// it). It takes the plain payloads clients send, flat
// objects whose required keys are spelled exactly, and accepts exactly
// what the general path accepts, with the same result; anything else (a
// refusal, or a payload it cannot judge alone) returns nil, and the
// general path decides.
func parseProgress(raw []byte, userID string) *Command {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil
	}
	// The general path looks for each required key spelled exactly, at
	// the top level, and not null; the decoder below matches keys in any
	// case. Without nested values and nulls, an exact `"key":` is a
	// top-level key with a value (inside a string its quotes would be
	// escaped), and the two agree.
	if bytes.IndexAny(raw[1:], "{[") >= 0 || bytes.Contains(raw, []byte("null")) {
		return nil
	}
	for _, k := range progressKeys {
		if !bytes.Contains(raw, k) {
			return nil
		}
	}
	pv := new(progressValues)
	if !progressFlat(raw, pv) {
		var w progressWire
		if json.Unmarshal(raw, &w) != nil {
			return nil
		}
		pv.fromWire(&w)
	}
	if pv.has&progressRequired != progressRequired {
		return nil
	}
	v := &pv.p
	if firstErr(CheckID("roomId", v.RoomID), checkUser(&v.UserID, userID),
		CheckID("fileId", v.FileID), CheckID("uploadId", v.UploadID),
		checkText("fileName", v.FileName, MaxNameLen, true),
		CheckSize("bytesUploaded", v.BytesUploaded), CheckSize("totalBytes", v.TotalBytes),
		checkProgress(v)) != nil {
		return nil
	}
	data, ok := appendProgress(make([]byte, 0, 64+len(raw)), v)
	if !ok {
		return nil
	}
	return &Command{Event: EventFileUploadProgress, RoomID: v.RoomID, Payload: v, Data: data}
}

// ParseAuthenticate validates the payload of `authenticate`.
func ParseAuthenticate(raw []byte) (*AuthenticatePayload, *Error) {
	if err := checkFields(raw, []string{"token"}); err != nil {
		return nil, err.WithEvent(EventAuthenticate, "")
	}
	v := &AuthenticatePayload{}
	if err := decode(raw, v); err != nil {
		return nil, err.WithEvent(EventAuthenticate, "")
	}
	return v, nil
}

// checkFields makes sure raw is a JSON object holding every name in req
// with a non-null value.
func checkFields(raw []byte, req []string) *Error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return NewError(CodeInvalidPayload, "the payload must be a JSON object")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return Errorf(CodeInvalidPayload, "the payload is not valid JSON: %v", err)
	}
	for _, name := range req {
		v, ok := fields[name]
		if !ok || string(v) == "null" {
			e := Errorf(CodeInvalidPayload, "%s is required", name)
			e.Field = name
			return e
		}
	}
	return nil
}

func decode(raw []byte, v any) *Error {
	if err := json.Unmarshal(raw, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			e := Errorf(CodeInvalidPayload, "%s must be a %s, not %s", te.Field, typeName(te.Type.Kind().String()), te.Value)
			e.Field = te.Field
			return e
		}
		return Errorf(CodeInvalidPayload, "the payload is not valid: %v", err)
	}
	return nil
}

func typeName(kind string) string {
	switch kind {
	case "int64", "int":
		return "integer"
	case "float64":
		return "number"
	case "string":
		return "string"
	case "bool":
		return "boolean"
	}
	return kind
}

func firstErr(errs ...*Error) *Error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func fieldErr(field, format string, args ...any) *Error {
	e := Errorf(CodeInvalidPayload, field+" "+format, args...)
	e.Field = field
	return e
}

// ValidID reports whether s is a valid id: 1 to 128 characters from
// letters, digits and _ - . : @ | / + = ~. Ids end up inside Redis key hash
// tags and JSON built by Lua scripts, so braces, quotes, backslashes,
// spaces and control characters are not allowed.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_' || c == '-' || c == '.' || c == ':' || c == '@' || c == '|' || c == '/' || c == '+' || c == '=' || c == '~':
		default:
			return false
		}
	}
	return true
}

// CheckID refuses an id that ValidID does not accept (or "", which is
// missing), naming field; the server API checks its ids with it.
func CheckID(field, s string) *Error {
	if s == "" {
		return fieldErr(field, "is required")
	}
	if !ValidID(s) {
		return fieldErr(field, "must be 1-%d characters of letters, digits and _-.:@|/+=~", MaxIDLen)
	}
	return nil
}

func checkOptID(field, s string) *Error {
	if s == "" {
		return nil
	}
	return CheckID(field, s)
}

// checkUser enforces that a payload's userId, when present, is the
// authenticated user, and fills it in when absent.
func checkUser(payloadUser *string, authUser string) *Error {
	if *payloadUser != "" && *payloadUser != authUser {
		e := NewError(CodeForbidden, "userId does not match the authenticated user")
		e.Field = "userId"
		return e
	}
	*payloadUser = authUser
	return nil
}

// ValidText reports whether s is valid UTF-8 of at most max bytes that
// shows what it says: no control characters, no line or paragraph
// separators, and no invisible format characters (Unicode category Cf:
// bidi embeddings, overrides and isolates such as U+202E and
// U+2066-U+2069, zero-width spaces, the byte order mark, soft hyphens,
// tags), with which a name can pass for another in a UI ("exe.txt"
// shown for "txt.exe"). The zero-width non-joiner and joiner (U+200C,
// U+200D) are allowed between two visible characters, where Persian and
// Indic words and emoji sequences need them, and nowhere else.
func ValidText(s string, max int) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	prev := rune(-1)
	for i, r := range s {
		if r < utf8.RuneSelf {
			if r < 0x20 || r == 0x7f {
				return false
			}
			prev = r
			continue
		}
		switch {
		case r == zwnj || r == zwj:
			next, _ := utf8.DecodeRuneInString(s[i+utf8.RuneLen(r):])
			if !joinable(prev) || !joinable(next) {
				return false
			}
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r), unicode.In(r, unicode.Zl, unicode.Zp):
			return false
		}
		prev = r
	}
	return true
}

const (
	zwnj = '\u200c'
	zwj  = '\u200d'
)

// joinable tells whether a zero-width (non-)joiner may stand next to r:
// a visible character, not the edge of the text (-1 or utf8.RuneError),
// a space or another invisible one.
func joinable(r rune) bool {
	return r >= 0 && r != utf8.RuneError && !unicode.IsSpace(r) && !unicode.IsControl(r) && !unicode.Is(unicode.Cf, r)
}

func checkText(field, s string, max int, req bool) *Error {
	if s == "" {
		if req {
			return fieldErr(field, "is required")
		}
		return nil
	}
	if !ValidText(s, max) {
		return fieldErr(field, "must be valid text of at most %d bytes without control or invisible formatting characters (such as bidi controls or zero-width spaces)", max)
	}
	return nil
}

// CheckSize refuses a byte count outside 0..MaxFileSize, naming field.
func CheckSize(field string, n int64) *Error {
	if n < 0 || n > MaxFileSize {
		return fieldErr(field, "must be between 0 and %d", int64(MaxFileSize))
	}
	return nil
}

func checkProgress(v *FileUploadProgressPayload) *Error {
	if v.BytesUploaded > v.TotalBytes {
		return fieldErr("bytesUploaded", "must not exceed totalBytes (%d > %d)", v.BytesUploaded, v.TotalBytes)
	}
	if math.IsNaN(v.Percentage) || v.Percentage < 0 || v.Percentage > 100 {
		return fieldErr("percentage", "must be between 0 and 100")
	}
	if v.UploadSpeed != nil && (math.IsNaN(*v.UploadSpeed) || *v.UploadSpeed < 0) {
		return fieldErr("uploadSpeed", "must be a non-negative number")
	}
	if v.EstimatedTimeRemaining != nil && (math.IsNaN(*v.EstimatedTimeRemaining) || *v.EstimatedTimeRemaining < 0) {
		return fieldErr("estimatedTimeRemaining", "must be a non-negative number")
	}
	return nil
}
