package schemas

// Version is the envelope version written with every inbound event. Workers
// refuse envelopes from a newer version instead of guessing at them.
const Version = 1

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
)

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
	return name == CmdDisconnect || name == CmdMove || name == CmdLockExpire
}

// Disconnect reasons carried by user-left.
const (
	ReasonLeft          = "left"
	ReasonDisconnected  = "disconnected"
	ReasonConnectorLost = "connector_lost"
	ReasonRecoveryOver  = "recovery_expired"
)
