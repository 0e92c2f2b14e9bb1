package schemas

import "fmt"

// Code is a machine-readable error code sent to clients. Every code a
// client can see is listed here; nothing else may reach the wire.
type Code string

const (
	// Authentication (authentication_failed and CONNECT_ERROR).
	CodeInvalidToken Code = "invalid_token"
	CodeExpiredToken Code = "expired_token"
	CodeUnauthorized Code = "unauthorized"
	// CodeTooManyConnections refuses a CONNECT past MAX_CONNS_PER_USER.
	CodeTooManyConnections Code = "too_many_connections"

	// Command refusals (ack or error event). Forbidden also refuses a
	// join-room the room access policy (ROOM_ACCESS) does not allow.
	CodeForbidden       Code = "forbidden"
	CodeInvalidPayload  Code = "invalid_payload"
	CodeUnknownEvent    Code = "unknown_event"
	CodePayloadTooLarge Code = "payload_too_large"
	CodeRateLimited     Code = "rate_limited"
	CodeTooManyRooms    Code = "too_many_rooms"
	// CodeTooManyNewRooms refuses a join that would create a room past
	// the user's ROOM_CREATE_RATE.
	CodeTooManyNewRooms Code = "too_many_new_rooms"
	CodeRoomLocked      Code = "room_locked"
	CodeNotMember       Code = "not_member"
	CodeNotLocked       Code = "not_locked"
	CodeNotLockHolder   Code = "not_lock_holder"
	CodeUploadNotFound  Code = "upload_not_found"

	// Room limits and ownership (refused by the workers, which keep each
	// room within its configured bounds).
	CodeRoomFull         Code = "room_full"
	CodeTooManyUploads   Code = "too_many_uploads"
	CodeTooManyFiles     Code = "too_many_files"
	CodeUploadNotStarted Code = "upload_not_started"
	CodeNotOwner         Code = "not_owner"

	// HTTP API refusals (404 and 409).
	CodeNotFound Code = "not_found"
	CodeConflict Code = "conflict"

	// Server-side trouble. Unavailable is temporary: retrying may work.
	CodeUnavailable Code = "unavailable"
	CodeInternal    Code = "internal"
)

// codeText is the default human message of each code.
var codeText = map[Code]string{
	CodeInvalidToken:       "the token is not valid",
	CodeExpiredToken:       "the token has expired",
	CodeUnauthorized:       "authenticate first",
	CodeTooManyConnections: "this user has too many connections",
	CodeForbidden:          "not allowed",
	CodeInvalidPayload:     "the payload is not valid",
	CodeUnknownEvent:       "unknown event",
	CodePayloadTooLarge:    "the payload is too large",
	CodeRateLimited:        "too many events, slow down",
	CodeTooManyRooms:       "this socket or user is in too many rooms",
	CodeTooManyNewRooms:    "this user created too many rooms lately; join an existing one or wait",
	CodeRoomLocked:         "the room is locked by another user",
	CodeNotMember:          "join the room first",
	CodeNotLocked:          "the room is not locked",
	CodeNotLockHolder:      "only the user holding the lock may unlock the room",
	CodeUploadNotFound:     "no such upload in this room",
	CodeRoomFull:           "the room has as many members as it allows",
	CodeTooManyUploads:     "the room has as many uploads in progress as it allows",
	CodeTooManyFiles:       "the room holds as many files as it allows",
	CodeUploadNotStarted:   "no such upload was started by you in this room",
	CodeNotOwner:           "the file belongs to another user",
	CodeNotFound:           "not found",
	CodeConflict:           "the current state does not allow it",
	CodeUnavailable:        "the service is temporarily unavailable, retry",
	CodeInternal:           "internal error",
}

// Known reports whether c is in the catalogue.
func (c Code) Known() bool { _, ok := codeText[c]; return ok }

// Error is the payload of the `error` event and of a refused ack. Its JSON
// shape is {code, message, ...}; optional fields say what it refers to.
type Error struct {
	Code      Code   `json:"code"`
	Message   string `json:"message"`
	Event     string `json:"event,omitempty"`
	RoomID    string `json:"roomId,omitempty"`
	Field     string `json:"field,omitempty"`
	Temporary bool   `json:"temporary,omitempty"`
}

// NewError returns an Error with the code's default message when msg is
// empty.
func NewError(code Code, msg string) *Error {
	if msg == "" {
		msg = codeText[code]
	}
	return &Error{Code: code, Message: msg, Temporary: code == CodeUnavailable || code == CodeRateLimited}
}

// Errorf is NewError with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return NewError(code, fmt.Sprintf(format, args...))
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// WithEvent returns a copy of e that names the event and room it refers to.
func (e *Error) WithEvent(event, roomID string) *Error {
	c := *e
	c.Event, c.RoomID = event, roomID
	return &c
}

// Ack is the single argument of every acknowledgement roomstream sends:
// {ok: true, ...} on success, {ok: false, error: {...}} on refusal.
type Ack struct {
	OK    bool          `json:"ok"`
	Error *Error        `json:"error,omitempty"`
	Room  *RoomSnapshot `json:"room,omitempty"`
	// AlreadyJoined (extension) answers a join-room of a socket that is
	// in the room already: it has had the snapshot and every event since,
	// so none is sent again (leave and join again for a fresh one).
	AlreadyJoined bool   `json:"alreadyJoined,omitempty"`
	UploadID      string `json:"uploadId,omitempty"`
	// Auth is set on the ack of `authenticate`.
	Auth *AuthSuccessPayload `json:"auth,omitempty"`
}
