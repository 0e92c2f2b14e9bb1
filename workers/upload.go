package workers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

const uploadTTL = 24 * time.Hour

// upload handles the four upload events: the room's active uploads and the
// design's upload:{uploadId}:progress hash follow them, and the room hears
// each (file-upload-completed becomes file-added).
//
// The payload in the entry is the one the connector validated and
// normalized (userId from the token, uploadId defaulted): relays are that
// payload with the server's fields added, not a re-encoding of it.
func (a *Applier) upload(env *streams.Envelope) (*call, error) {
	at := streams.ISOTime(env.At)
	var (
		mode, uploadID, fileID, event string
		stored                        []byte // upload or file JSON kept in the room
		relay                         []byte
		progress                      []any // fields of upload:{id}:progress; nil = delete it
	)
	switch env.Type {
	case schemas.EventFileUploadStarted:
		var p schemas.FileUploadStartedPayload
		if err := decode(env, &p); err != nil {
			return nil, err
		}
		if p.UploadID == "" {
			p.UploadID = p.FileID
		}
		mode, uploadID, fileID, event = "start", p.UploadID, p.FileID, schemas.EventFileUploadStarted
		p.UserID, p.UserName = env.UserID, env.UserName
		relay = mustJSON(p)
		stored = mustJSON(schemas.Upload{UploadID: p.UploadID, FileID: p.FileID, FileName: p.FileName, UserID: p.UserID,
			UserName: p.UserName, TotalBytes: p.Size, MimeType: p.MimeType, UpdatedAt: at})
		progress = []any{"fileId", p.FileID, "uploadId", p.UploadID, "fileName", p.FileName, "roomId", p.RoomID,
			"userId", p.UserID, "bytesUploaded", 0, "totalBytes", p.Size, "percentage", 0, "status", "started", "updatedAt", at}
	case schemas.EventFileUploadProgress:
		p, err := schemas.DecodeProgress(env.Data)
		if err != nil {
			return nil, fmt.Errorf("%w: %s payload of %s: %v", ErrPermanent, env.Type, env.ID, err)
		}
		mode, uploadID, fileID, event = "progress", p.UploadID, p.FileID, schemas.EventFileUploadProgress
		relay = withField(env.Data, "userName", env.UserName)
		stored = mustJSON(schemas.Upload{UploadID: p.UploadID, FileID: p.FileID, FileName: p.FileName, UserID: env.UserID,
			UserName: env.UserName, BytesUploaded: p.BytesUploaded, TotalBytes: p.TotalBytes, Percentage: p.Percentage, UpdatedAt: at})
		progress = []any{"fileId", p.FileID, "uploadId", p.UploadID, "fileName", p.FileName, "roomId", p.RoomID,
			"userId", env.UserID, "bytesUploaded", p.BytesUploaded, "totalBytes", p.TotalBytes,
			"percentage", strconv.FormatFloat(p.Percentage, 'f', -1, 64), "status", "uploading", "updatedAt", at}
		if p.UploadSpeed != nil {
			progress = append(progress, "uploadSpeed", strconv.FormatFloat(*p.UploadSpeed, 'f', -1, 64))
		}
		if p.EstimatedTimeRemaining != nil {
			progress = append(progress, "estimatedTimeRemaining", strconv.FormatFloat(*p.EstimatedTimeRemaining, 'f', -1, 64))
		}
	case schemas.EventFileUploadCompleted:
		var p schemas.FileUploadCompletedPayload
		if err := decode(env, &p); err != nil {
			return nil, err
		}
		if p.UploadID == "" {
			p.UploadID = p.FileID
		}
		mime := p.MimeType
		if mime == "" {
			mime = schemas.DefaultMimeType
		}
		file := schemas.File{ID: p.FileID, Name: p.FileName, Size: p.Size, MimeType: mime, UploadedBy: env.UserID,
			UploadedByName: env.UserName, CreatedAt: at, ParentID: p.ParentID, IsFolder: p.IsFolder}
		mode, uploadID, fileID, event = "complete", p.UploadID, p.FileID, schemas.EventFileAdded
		relay = mustJSON(schemas.FileAddedPayload{RoomID: env.RoomID, File: file})
		stored = mustJSON(file)
	case schemas.EventFileUploadFailed:
		var p schemas.FileUploadFailedPayload
		if err := decode(env, &p); err != nil {
			return nil, err
		}
		if p.UploadID == "" {
			p.UploadID = p.FileID
		}
		p.UserID, p.UserName, p.FailedAt = env.UserID, env.UserName, at
		mode, uploadID, fileID, event = "fail", p.UploadID, p.FileID, schemas.EventFileUploadFailed
		relay = mustJSON(p)
	}
	var (
		version string // the room's view this report is sent under ("": none)
		expire  bool   // its write sets the progress hash's TTL
	)
	c := &call{script: a.scripts.upload, args: []any{mode, env.UserID, uploadID, fileID, stored, a.limits.RoomMaxUploads, a.limits.RoomMaxFiles, ""},
		done: func(r reply, e *effects) error {
			if !e.applied(env, r, uploadFields) {
				return nil
			}
			if env.HasAck {
				e.reply(env, schemas.Ack{OK: true, UploadID: uploadID})
			}
			// Uploads dropped to make room for this one (their users
			// left the room): the room hears they failed, before it hears
			// of the new one.
			var dropped []string
			if mode == "start" {
				dropped = r.dropped()
			}
			gone := make([]string, 0, len(dropped))
			for _, js := range dropped {
				var u schemas.Upload
				if json.Unmarshal([]byte(js), &u) != nil {
					continue
				}
				gone = append(gone, a.keys.UploadProgress(u.UploadID))
				e.broadcast(r.conns(), env.RoomID, schemas.EventFileUploadFailed, mustJSON(schemas.FileUploadFailedPayload{
					FileID: u.FileID, UploadID: u.UploadID, RoomID: env.RoomID, UserID: u.UserID, UserName: u.UserName,
					Reason: ReasonUploaderLeft, FailedAt: at,
				}))
			}
			e.broadcast(r.conns(), env.RoomID, event, relay)
			key := a.keys.UploadProgress(uploadID)
			// A report under its room's view may leave the hash's TTL
			// as the view saw it set (views.expireDue).
			expire = mode != "progress" || a.views.expireDue(env.RoomID, uploadID, passed(version, r), env.At)
			e.side = append(e.side, func(ctx context.Context, p redis.Pipeliner) []redis.Cmder {
				cmds := make([]redis.Cmder, 0, 2+len(gone))
				for _, k := range gone {
					cmds = append(cmds, p.Del(ctx, k))
				}
				if progress == nil {
					return append(cmds, p.Del(ctx, key))
				}
				cmds = append(cmds, p.HSet(ctx, key, progress...))
				if expire {
					cmds = append(cmds, p.Expire(ctx, key, uploadTTL))
				}
				return cmds
			})
			return nil
		}}
	if mode == "progress" {
		// The room's view (views.go) may vouch for the checks: the
		// script then only verifies that nothing else happened since.
		version = a.views.version(env.RoomID, env.UserID, uploadID)
		c.args[len(c.args)-1] = version
		c.progress = func(r reply) {
			var expired time.Time
			if expire {
				expired = env.At
			}
			a.views.progressed(env.RoomID, env.ID, r.at(2), env.UserID, uploadID, expired)
		}
	}
	return c, nil
}

// passed returns version when the report whose reply is r passed under
// it (the room's last applied entry before the report was version), ""
// otherwise.
func passed(version string, r reply) string {
	if version != "" && r.at(2) == version {
		return version
	}
	return ""
}

// ReasonUploaderLeft is the reason of the file-upload-failed the room
// hears when an upload of a user who left is dropped to make room for a
// new one.
const ReasonUploaderLeft = "the uploader left the room"

// withField returns the JSON object obj with one more string field. The
// connector's normalized payloads never carry the server's fields, so the
// name is new.
func withField(obj []byte, name, value string) []byte {
	obj = bytes.TrimRight(obj, " \t\r\n")
	if len(obj) < 2 || obj[len(obj)-1] != '}' {
		return obj
	}
	v, _ := json.Marshal(value) // a string always encodes
	out := make([]byte, 0, len(obj)+len(name)+len(v)+4)
	out = append(out, obj[:len(obj)-1]...)
	if len(bytes.TrimSpace(obj[1:len(obj)-1])) > 0 {
		out = append(out, ',')
	}
	out = append(out, '"')
	out = append(out, name...)
	out = append(out, '"', ':')
	out = append(out, v...)
	return append(out, '}')
}
