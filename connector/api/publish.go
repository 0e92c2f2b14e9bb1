package api

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// Idempotency of Publish: how long a request's record answers its
// repeats (the workers keep an API origin's event numbers a little
// longer: workers/scripts/prelude.lua), and how long a pending request
// has before a retry takes it over.
const (
	idempotencyTTL    = 24 * time.Hour
	idempotencyWait   = 30 * time.Second
	maxIdempotencyKey = 255
)

var (
	//go:embed scripts/idempotency.lua
	idempotencyClaimSrc string
	idempotencyClaim    = redis.NewScript(idempotencyClaimSrc)
)

// PublishRequest is the body of POST /rooms/{roomId}/events.
type PublishRequest struct {
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
}

// fileData is the data of a published file-added: the design's file, and
// the upload it completes (default: the file id).
type fileData struct {
	File     *schemas.File `json:"file"`
	UploadID string        `json:"uploadId,omitempty"`
	RoomID   string        `json:"roomId,omitempty"`
}

// prepare validates a publish and returns the envelope to append.
func (s *Service) prepare(room string, req PublishRequest) (*streams.Envelope, *Error) {
	if err := checkID("roomId", room); err != nil {
		return nil, err
	}
	env := &streams.Envelope{Type: schemas.CmdPublish, RoomID: room, Event: req.Event, Via: schemas.ViaAPI}
	data := req.Data
	if len(data) == 0 || string(data) == "null" {
		data = json.RawMessage("{}")
	}
	if len(data) > s.maxData {
		return nil, badField("data", "must be at most %d bytes of JSON, got %d", s.maxData, len(data))
	}
	switch {
	case req.Event == "":
		return nil, badField("event", "is required")
	case req.Event == schemas.EventFileAdded:
		f, err := checkFile(room, data)
		if err != nil {
			return nil, err
		}
		env.Target = f.UploadID
		env.Data, _ = json.Marshal(schemas.FileAddedPayload{RoomID: room, File: *f.File})
	case schemas.ValidCustomEvent(req.Event):
		if !json.Valid(data) {
			return nil, badField("data", "must be JSON")
		}
		env.Data = data
	default:
		return nil, badField("event", "must be %q or a custom event: %q followed by 1-%d letters, digits and _-.:/",
			schemas.EventFileAdded, schemas.CustomEventPrefix, schemas.MaxEventNameLen-len(schemas.CustomEventPrefix))
	}
	return env, nil
}

// checkFile validates the data of a file-added and fills its defaults.
func checkFile(room string, data []byte) (*fileData, *Error) {
	var f fileData
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, badField("data", "must be {file: {id, name, size, mimeType?, uploadedBy?, uploadedByName?, createdAt?, parentId?, isFolder?}, uploadId?}: %v", err)
	}
	if f.File == nil {
		return nil, badField("data.file", "is required")
	}
	if f.RoomID != "" && f.RoomID != room {
		return nil, badField("data.roomId", "must be the room of the path (%s) when given", room)
	}
	file := f.File
	if err := checkID("data.file.id", file.ID); err != nil {
		return nil, err
	}
	if file.Name == "" || !schemas.ValidText(file.Name, schemas.MaxNameLen) {
		return nil, badField("data.file.name", "is required: text of at most %d bytes without control characters", schemas.MaxNameLen)
	}
	if err := invalid(schemas.CheckSize("data.file.size", file.Size)); err != nil {
		return nil, err
	}
	if file.MimeType == "" {
		file.MimeType = schemas.DefaultMimeType
	} else if !schemas.ValidMimeType(file.MimeType) {
		return nil, badField("data.file.mimeType", "must be printable ASCII of at most %d bytes", schemas.MaxNameLen)
	}
	if file.UploadedBy != "" && !schemas.ValidID(file.UploadedBy) {
		return nil, badField("data.file.uploadedBy", "must be a user id")
	}
	if !schemas.ValidText(file.UploadedByName, schemas.MaxNameLen) {
		return nil, badField("data.file.uploadedByName", "must be text of at most %d bytes", schemas.MaxNameLen)
	}
	if file.UploadedByName == "" {
		file.UploadedByName = file.UploadedBy
	}
	if file.CreatedAt != "" {
		t, err := time.Parse(time.RFC3339Nano, file.CreatedAt)
		if err != nil {
			return nil, badField("data.file.createdAt", "must be an ISO-8601 time (2026-01-02T15:04:05Z)")
		}
		file.CreatedAt = streams.ISOTime(t)
	}
	if file.ParentID != "" && !schemas.ValidID(file.ParentID) {
		return nil, badField("data.file.parentId", "must be a file id")
	}
	if f.UploadID == "" {
		f.UploadID = file.ID
	} else if !schemas.ValidID(f.UploadID) {
		return nil, badField("data.uploadId", "must be an upload id")
	}
	return &f, nil
}

// Publish appends a server event for room. With an idempotency key, a
// request repeated with the same key (and the same room, event and data)
// answers the first one's entry and appends nothing, for as long as the
// key's record lives (24 h); after that the key is a new request. Should a
// request's answer be lost between its append and its record's update (a
// crash), a retry appends it again under the same number (the record's
// generation, as a socket event's seq) and the workers apply it once: they
// keep an API origin's numbers as long as a record lives.
func (s *Service) Publish(ctx context.Context, room string, req PublishRequest, idemKey string) (*Accepted, error) {
	env, verr := s.prepare(room, req)
	if verr != nil {
		return nil, verr
	}
	if len(idemKey) > maxIdempotencyKey || (idemKey != "" && !schemas.ValidText(idemKey, maxIdempotencyKey)) {
		return nil, badField("Idempotency-Key", "must be text of at most %d bytes", maxIdempotencyKey)
	}
	if err := s.roomExists(ctx, room); err != nil {
		return nil, err
	}
	if idemKey == "" {
		return s.append(ctx, env)
	}
	sum := sha256.Sum256([]byte(room + "\x00" + idemKey))
	digest := hex.EncodeToString(sum[:12])
	fp := sha256.Sum256(append([]byte(env.Event+"\x00"), env.Data...))
	fprint := hex.EncodeToString(fp[:12])
	key := s.c.Keys.Idempotency(digest)
	rdb := s.c.Redis()
	res, err := idempotencyClaim.Run(ctx, rdb, []string{key}, fprint, idempotencyWait.Milliseconds(), idempotencyTTL.Milliseconds()).StringSlice()
	if err != nil {
		return nil, err
	}
	var gen string
	switch res[0] {
	case "other":
		return nil, conflict(schemas.CodeConflict, "this Idempotency-Key was used for another request to room %s", room)
	case "busy":
		return nil, conflict(schemas.CodeConflict, "a request with this Idempotency-Key is in progress; retry")
	case "done":
		return &Accepted{EntryID: res[1], RoomID: room, Repeated: true}, nil
	case "new", "retry":
		gen = res[1]
	default:
		return nil, fmt.Errorf("idempotency record %s: unexpected %q", key, res[0])
	}
	seq, err := strconv.ParseUint(gen, 10, 64)
	if err != nil || seq == 0 {
		return nil, fmt.Errorf("idempotency record %s: bad generation %q", key, gen)
	}
	env.SocketID, env.Origin, env.Seq = "api:"+digest, digest, seq
	acc, err := s.append(ctx, env)
	if err != nil {
		// It may have been appended all the same (a lost reply): a retry
		// may take over at once, under the same number.
		_ = rdb.Set(context.WithoutCancel(ctx), key, "pending "+fprint+" "+gen+" 0", redis.KeepTTL).Err()
		return nil, err
	}
	// Should this fail, the answer stands all the same: a retry once the
	// pending request counts as abandoned is appended again, and applied
	// once (see above).
	_ = rdb.Set(ctx, key, "done "+fprint+" "+acc.EntryID+" "+gen, idempotencyTTL).Err()
	return acc, nil
}
