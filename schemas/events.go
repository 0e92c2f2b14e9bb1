package schemas

import "strings"

// Client-to-server events (the only names a client may send).
const (
	EventAuthenticate        = "authenticate"
	EventJoinRoom            = "join-room"
	EventLeaveRoom           = "leave-room"
	EventLockRoom            = "lock-room"
	EventUnlockRoom          = "unlock-room"
	EventFileUploadStarted   = "file-upload-started"
	EventFileUploadProgress  = "file-upload-progress"
	EventFileUploadCompleted = "file-upload-completed"
	EventFileUploadFailed    = "file-upload-failed"
)

// Server-to-client events. The file-upload-* relays reuse the client names.
const (
	EventAuthSuccessful = "authentication_successful"
	EventAuthFailed     = "authentication_failed"
	EventUserJoined     = "user-joined"
	EventUserLeft       = "user-left"
	EventRoomLocked     = "room-locked"
	EventRoomUnlocked   = "room-unlocked"
	EventRoomState      = "room-state"
	EventFileAdded      = "file-added"
	EventError          = "error"
)

// Internal commands. They travel through the inbound streams like client
// events but only roomstream processes write them; a client sending one of
// these names gets unknown_event.
const (
	// CmdDisconnect removes one socket from one room (socket closed, recovery
	// window over, or its connector died).
	CmdDisconnect = "socket-disconnect"
	// CmdMove re-points one socket of one room at another connector after a
	// recovered connection.
	CmdMove = "socket-move"
	// CmdLockExpire releases a lock whose holder left the room for longer
	// than the lock grace period.
	CmdLockExpire = "lock-expire"
	// CmdPublish delivers a server event (from the HTTP API) to a room's
	// members: a design event that changes the room (file-added) or a
	// custom event under CustomEventPrefix.
	CmdPublish = "server-event"
	// CmdRemoveMember removes every socket of one user from one room
	// (HTTP API; user-left with reason "removed").
	CmdRemoveMember = "member-remove"
	// CmdOperatorUnlock releases a room's lock whoever holds it (HTTP
	// API; room-unlocked with reason "operator").
	CmdOperatorUnlock = "operator-unlock"
)

// CustomEventPrefix starts the names of the custom events a backend may
// publish to a room through the HTTP API ("app:comment-added"); the
// prefix keeps them apart from the design's events, present and future.
const CustomEventPrefix = "app:"

// MaxEventNameLen bounds a custom event's name.
const MaxEventNameLen = 64

// ValidCustomEvent reports whether name is a custom event name: the
// prefix, then 1 to MaxEventNameLen letters, digits and _ - . : /.
func ValidCustomEvent(name string) bool {
	rest, ok := strings.CutPrefix(name, CustomEventPrefix)
	if !ok || len(rest) == 0 || len(name) > MaxEventNameLen {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_' || c == '-' || c == '.' || c == ':' || c == '/':
		default:
			return false
		}
	}
	return true
}

// MetricName is the metric label of an outbound event: custom events
// share one ("app:*"), so that the names a backend picks cannot grow the
// metrics without bound.
func MetricName(event string) string {
	if strings.HasPrefix(event, CustomEventPrefix) {
		return CustomEventPrefix + "*"
	}
	return event
}

// Origins of an inbound entry (Envelope.Via): a socket (empty) or the
// HTTP API.
const ViaAPI = "api"

// roomEvents are the client events that act on a room and so go through the
// inbound streams.
var roomEvents = map[string]bool{
	EventJoinRoom:            true,
	EventLeaveRoom:           true,
	EventLockRoom:            true,
	EventUnlockRoom:          true,
	EventFileUploadStarted:   true,
	EventFileUploadProgress:  true,
	EventFileUploadCompleted: true,
	EventFileUploadFailed:    true,
}

// IsRoomEvent reports whether name is a client event that acts on a room.
func IsRoomEvent(name string) bool { return roomEvents[name] }

// IsInternal reports whether name is an internal command.
func IsInternal(name string) bool {
	switch name {
	case CmdDisconnect, CmdMove, CmdLockExpire, CmdPublish, CmdRemoveMember, CmdOperatorUnlock:
		return true
	}
	return false
}

// Disconnect reasons carried by user-left.
const (
	ReasonLeft          = "left"
	ReasonDisconnected  = "disconnected"
	ReasonConnectorLost = "connector_lost"
	ReasonRecoveryOver  = "recovery_expired"
	// ReasonRemoved: an operator removed the user from the room (HTTP API).
	ReasonRemoved = "removed"
	// ReasonServerDisconnect: an operator disconnected the user's sockets
	// (HTTP API).
	ReasonServerDisconnect = "server_disconnect"
	// ReasonOperator: an operator released the room's lock (HTTP API).
	ReasonOperator = "operator"
	// ReasonAccessRevoked: a fresh token (authenticate, or a recovery)
	// no longer allows the room (ROOM_ACCESS claims or proxy).
	ReasonAccessRevoked = "access_revoked"
)
