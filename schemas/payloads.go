package schemas

// Field names and shapes follow websocket-infrastructure.md exactly;
// additions are marked "extension" and are always optional on input.

// AuthenticatePayload is the payload of `authenticate`.
type AuthenticatePayload struct {
	Token string `json:"token"`
}

// AuthSuccessPayload is the payload of `authentication_successful`.
type AuthSuccessPayload struct {
	UserID    string `json:"userId"`
	SessionID string `json:"sessionId"`
}

// AuthFailurePayload is the payload of `authentication_failed`.
type AuthFailurePayload struct {
	Reason string `json:"reason"`
	Code   Code   `json:"code"`
}

// JoinRoomPayload is the payload of `join-room`.
type JoinRoomPayload struct {
	RoomID string `json:"roomId"`
	UserID string `json:"userId"`
}

// LeaveRoomPayload is the payload of `leave-room`.
type LeaveRoomPayload struct {
	RoomID string `json:"roomId"`
	UserID string `json:"userId"`
}

// UserJoinedPayload is the payload of `user-joined`.
type UserJoinedPayload struct {
	RoomID   string `json:"roomId"`
	UserID   string `json:"userId"`
	UserName string `json:"userName"`
	JoinedAt string `json:"joinedAt"`
}

// UserLeftPayload is the payload of `user-left`.
type UserLeftPayload struct {
	RoomID   string `json:"roomId"`
	UserID   string `json:"userId"`
	UserName string `json:"userName"`
	LeftAt   string `json:"leftAt"`
	Reason   string `json:"reason"`
}

// LockRoomPayload is the payload of `lock-room`.
type LockRoomPayload struct {
	RoomID string `json:"roomId"`
	UserID string `json:"userId"`
	Reason string `json:"reason,omitempty"`
}

// UnlockRoomPayload is the payload of `unlock-room`.
type UnlockRoomPayload struct {
	RoomID string `json:"roomId"`
	UserID string `json:"userId"`
	Reason string `json:"reason,omitempty"`
}

// RoomLockedPayload is the payload of `room-locked`.
type RoomLockedPayload struct {
	RoomID       string `json:"roomId"`
	LockedBy     string `json:"lockedBy"`
	LockedByName string `json:"lockedByName"`
	LockedAt     string `json:"lockedAt"`
	Reason       string `json:"reason,omitempty"`
}

// RoomUnlockedPayload is the payload of `room-unlocked`. UnlockedBy is empty
// when the server released the lock (its holder left); Reason says why.
type RoomUnlockedPayload struct {
	RoomID         string `json:"roomId"`
	UnlockedBy     string `json:"unlockedBy,omitempty"`
	UnlockedByName string `json:"unlockedByName,omitempty"`
	UnlockedAt     string `json:"unlockedAt"`
	Reason         string `json:"reason,omitempty"`
}

// FileUploadStartedPayload is the payload of `file-upload-started`, in both
// directions. UploadID (extension) defaults to FileID; the relay always
// carries it, and UserName, so that clients can label the upload.
type FileUploadStartedPayload struct {
	FileID   string `json:"fileId"`
	FileName string `json:"fileName"`
	RoomID   string `json:"roomId"`
	UserID   string `json:"userId"`
	Size     int64  `json:"size"`
	MimeType string `json:"mimeType,omitempty"`
	UploadID string `json:"uploadId,omitempty"`
	UserName string `json:"userName,omitempty"`
}

// FileUploadProgressPayload is the payload of `file-upload-progress`, in
// both directions (the relay adds UserName).
type FileUploadProgressPayload struct {
	FileID                 string   `json:"fileId"`
	UploadID               string   `json:"uploadId"`
	FileName               string   `json:"fileName"`
	RoomID                 string   `json:"roomId"`
	UserID                 string   `json:"userId"`
	BytesUploaded          int64    `json:"bytesUploaded"`
	TotalBytes             int64    `json:"totalBytes"`
	Percentage             float64  `json:"percentage"`
	UploadSpeed            *float64 `json:"uploadSpeed,omitempty"`
	EstimatedTimeRemaining *float64 `json:"estimatedTimeRemaining,omitempty"`
	UserName               string   `json:"userName,omitempty"`
	// Seq and SentAt (extensions) let load generators and tests measure
	// order and latency; roomstream relays them untouched.
	Seq    *int64 `json:"seq,omitempty"`
	SentAt *int64 `json:"sentAt,omitempty"`
}

// FileUploadCompletedPayload is the payload of `file-upload-completed`.
type FileUploadCompletedPayload struct {
	FileID   string `json:"fileId"`
	UploadID string `json:"uploadId,omitempty"`
	FileName string `json:"fileName"`
	RoomID   string `json:"roomId"`
	UserID   string `json:"userId"`
	Size     int64  `json:"size"`
	MimeType string `json:"mimeType,omitempty"`
	ParentID string `json:"parentId,omitempty"`
	IsFolder bool   `json:"isFolder,omitempty"`
}

// FileUploadFailedPayload is the payload of `file-upload-failed`, in both
// directions (the relay adds UserName and FailedAt).
type FileUploadFailedPayload struct {
	FileID   string `json:"fileId"`
	UploadID string `json:"uploadId,omitempty"`
	RoomID   string `json:"roomId"`
	UserID   string `json:"userId"`
	Reason   string `json:"reason,omitempty"`
	UserName string `json:"userName,omitempty"`
	FailedAt string `json:"failedAt,omitempty"`
}

// FileAddedPayload is the payload of `file-added`.
type FileAddedPayload struct {
	RoomID string `json:"roomId"`
	File   File   `json:"file"`
}

// File is the file object of `file-added`.
type File struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	Size           int64  `json:"size"`
	MimeType       string `json:"mimeType"`
	UploadedBy     string `json:"uploadedBy"`
	UploadedByName string `json:"uploadedByName"`
	CreatedAt      string `json:"createdAt"`
	ParentID       string `json:"parentId,omitempty"`
	IsFolder       bool   `json:"isFolder"`
}

// Member is one user present in a room.
type Member struct {
	UserID   string `json:"userId"`
	UserName string `json:"userName"`
	JoinedAt string `json:"joinedAt"`
}

// Upload is one upload in progress, as kept in the room's activeUploads.
type Upload struct {
	UploadID      string  `json:"uploadId"`
	FileID        string  `json:"fileId"`
	FileName      string  `json:"fileName"`
	UserID        string  `json:"userId"`
	UserName      string  `json:"userName"`
	BytesUploaded int64   `json:"bytesUploaded"`
	TotalBytes    int64   `json:"totalBytes"`
	Percentage    float64 `json:"percentage"`
	MimeType      string  `json:"mimeType,omitempty"`
	UpdatedAt     string  `json:"updatedAt"`
}

// RoomSnapshot is what a joiner receives (in the join ack, or as
// `room-state` when it asked for no ack): the room as it is now.
//
// Its lists are capped (the workers' ROOMSTREAM_SNAPSHOT_LIMIT entries
// each): Members holds the earliest joined, ActiveUploads the first by
// upload id, Files the most recent (oldest first). The counts
// (extensions) say how many the room has, and Truncated is set when a
// list holds fewer than its count.
type RoomSnapshot struct {
	RoomID        string   `json:"roomId"`
	Name          string   `json:"name"`
	Members       []Member `json:"members"`
	IsLocked      bool     `json:"isLocked"`
	LockedBy      string   `json:"lockedBy,omitempty"`
	LockedByName  string   `json:"lockedByName,omitempty"`
	LockedAt      string   `json:"lockedAt,omitempty"`
	LockReason    string   `json:"lockReason,omitempty"`
	ActiveUploads []Upload `json:"activeUploads"`
	Files         []File   `json:"files"`
	LastActivity  string   `json:"lastActivity,omitempty"`
	MemberCount   int      `json:"memberCount"`
	UploadCount   int      `json:"uploadCount"`
	FileCount     int      `json:"fileCount"`
	Truncated     bool     `json:"truncated,omitempty"`
}
