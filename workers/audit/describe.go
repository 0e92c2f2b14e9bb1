package audit

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// describe says in a few words what an entry asked for, from its payload:
// the file of an upload, the reason of a lock, the socket of a join.
func describe(env *streams.Envelope) string {
	var parts []string
	add := func(format string, args ...any) { parts = append(parts, fmt.Sprintf(format, args...)) }
	switch env.Type {
	case schemas.EventJoinRoom, schemas.EventLeaveRoom:
		add("socket %s", env.SocketID)
	case schemas.CmdDisconnect:
		add("socket %s on %s", env.SocketID, env.ConnectorID)
	case schemas.CmdMove:
		add("socket %s moved to connector %s", env.SocketID, env.Target)
	case schemas.CmdPublish:
		add("event %q", env.Event)
		if env.Event == schemas.EventFileAdded {
			var p schemas.FileAddedPayload
			if json.Unmarshal(env.Data, &p) == nil {
				add("file %q (%s) as %s", p.File.Name, byteSize(p.File.Size), p.File.ID)
			}
			if env.Target != "" {
				add("ends upload %s", env.Target)
			}
		}
		if env.Seq > 0 {
			add("idempotency key %s", env.Origin)
		}
	case schemas.CmdRemoveMember:
		add("removes user %s", env.UserID)
	case schemas.EventLockRoom, schemas.EventUnlockRoom:
		var p struct {
			Reason string `json:"reason"`
		}
		if json.Unmarshal(env.Data, &p) == nil && p.Reason != "" {
			add("reason %q", p.Reason)
		}
	case schemas.EventFileUploadStarted:
		var p schemas.FileUploadStartedPayload
		if json.Unmarshal(env.Data, &p) == nil {
			add("%q (%s", p.FileName, byteSize(p.Size))
			if p.MimeType != "" {
				parts[len(parts)-1] += ", " + p.MimeType
			}
			parts[len(parts)-1] += ")"
			add("file %s", p.FileID)
			if p.UploadID != "" && p.UploadID != p.FileID {
				add("upload %s", p.UploadID)
			}
		}
	case schemas.EventFileUploadProgress:
		var p schemas.FileUploadProgressPayload
		if json.Unmarshal(env.Data, &p) == nil {
			add("%q %s%% (%s of %s)", p.FileName, strconv.FormatFloat(p.Percentage, 'f', -1, 64), byteSize(p.BytesUploaded), byteSize(p.TotalBytes))
			add("upload %s", p.UploadID)
		}
	case schemas.EventFileUploadCompleted:
		var p schemas.FileUploadCompletedPayload
		if json.Unmarshal(env.Data, &p) == nil {
			kind := "file"
			if p.IsFolder {
				kind = "folder"
			}
			add("%s %q (%s) added as %s", kind, p.FileName, byteSize(p.Size), p.FileID)
		}
	case schemas.EventFileUploadFailed:
		var p schemas.FileUploadFailedPayload
		if json.Unmarshal(env.Data, &p) == nil {
			add("file %s", p.FileID)
			if p.Reason != "" {
				add("reason %q", p.Reason)
			}
		}
	}
	if env.Reason != "" {
		add("reason %q", env.Reason)
	}
	return strings.Join(parts, ", ")
}

func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
