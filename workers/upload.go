package workers

import (
	"context"
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
func (a *Applier) upload(ctx context.Context, token int64, env *streams.Envelope, e *effects) error {
	at := streams.ISOTime(env.At)
	var (
		mode, uploadID, fileID string
		stored                 []byte // upload or file JSON kept in the room
		event                  string
		relay                  any
		progress               map[string]any // fields of upload:{id}:progress; nil = delete it
	)
	switch env.Type {
	case schemas.EventFileUploadStarted:
		var p schemas.FileUploadStartedPayload
		if err := a.decode(env, &p); err != nil {
			return err
		}
		p.UserID, p.UserName = env.UserID, env.UserName
		if p.UploadID == "" {
			p.UploadID = p.FileID
		}
		mode, uploadID, fileID, event, relay = "start", p.UploadID, p.FileID, schemas.EventFileUploadStarted, p
		stored = mustJSON(schemas.Upload{UploadID: p.UploadID, FileID: p.FileID, FileName: p.FileName, UserID: p.UserID,
			UserName: p.UserName, TotalBytes: p.Size, MimeType: p.MimeType, UpdatedAt: at})
		progress = map[string]any{"fileId": p.FileID, "uploadId": p.UploadID, "fileName": p.FileName, "roomId": p.RoomID,
			"userId": p.UserID, "bytesUploaded": 0, "totalBytes": p.Size, "percentage": 0, "status": "started", "updatedAt": at}
	case schemas.EventFileUploadProgress:
		var p schemas.FileUploadProgressPayload
		if err := a.decode(env, &p); err != nil {
			return err
		}
		p.UserID, p.UserName = env.UserID, env.UserName
		mode, uploadID, fileID, event, relay = "progress", p.UploadID, p.FileID, schemas.EventFileUploadProgress, p
		stored = mustJSON(schemas.Upload{UploadID: p.UploadID, FileID: p.FileID, FileName: p.FileName, UserID: p.UserID,
			UserName: p.UserName, BytesUploaded: p.BytesUploaded, TotalBytes: p.TotalBytes, Percentage: p.Percentage, UpdatedAt: at})
		progress = map[string]any{"fileId": p.FileID, "uploadId": p.UploadID, "fileName": p.FileName, "roomId": p.RoomID,
			"userId": p.UserID, "bytesUploaded": p.BytesUploaded, "totalBytes": p.TotalBytes,
			"percentage": strconv.FormatFloat(p.Percentage, 'f', -1, 64), "status": "uploading", "updatedAt": at}
		if p.UploadSpeed != nil {
			progress["uploadSpeed"] = strconv.FormatFloat(*p.UploadSpeed, 'f', -1, 64)
		}
		if p.EstimatedTimeRemaining != nil {
			progress["estimatedTimeRemaining"] = strconv.FormatFloat(*p.EstimatedTimeRemaining, 'f', -1, 64)
		}
	case schemas.EventFileUploadCompleted:
		var p schemas.FileUploadCompletedPayload
		if err := a.decode(env, &p); err != nil {
			return err
		}
		if p.UploadID == "" {
			p.UploadID = p.FileID
		}
		mime := p.MimeType
		if mime == "" {
			mime = "application/octet-stream"
		}
		file := schemas.File{ID: p.FileID, Name: p.FileName, Size: p.Size, MimeType: mime, UploadedBy: env.UserID,
			UploadedByName: env.UserName, CreatedAt: at, ParentID: p.ParentID, IsFolder: p.IsFolder}
		mode, uploadID, fileID, event = "complete", p.UploadID, p.FileID, schemas.EventFileAdded
		relay = schemas.FileAddedPayload{RoomID: env.RoomID, File: file}
		stored = mustJSON(file)
	case schemas.EventFileUploadFailed:
		var p schemas.FileUploadFailedPayload
		if err := a.decode(env, &p); err != nil {
			return err
		}
		if p.UploadID == "" {
			p.UploadID = p.FileID
		}
		p.UserID, p.UserName, p.FailedAt = env.UserID, env.UserName, at
		mode, uploadID, fileID, event, relay = "fail", p.UploadID, p.FileID, schemas.EventFileUploadFailed, p
	}
	res, err := a.run(ctx, a.scripts.upload, token, env, mode, env.UserID, uploadID, fileID, string(stored))
	if err != nil || res[0] == "dup" {
		e.outcome.Status = statusOf(res)
		return err
	}
	if res[0] != "ok" || len(res) < 2 {
		e.refuse(env, refusal(env, res))
		return nil
	}
	e.outcome.Status = "ok"
	e.reply(env, schemas.Ack{OK: true, UploadID: uploadID})
	e.broadcast(res[1], event, relay)
	key := a.keys.UploadProgress(uploadID)
	e.side = append(e.side, func(ctx context.Context, p redis.Pipeliner) {
		if progress == nil {
			p.Del(ctx, key)
			return
		}
		p.HSet(ctx, key, progress)
		p.Expire(ctx, key, uploadTTL)
	})
	return nil
}
