// Package api is roomstream's server API for backends and operators: an
// HTTP JSON interface under /api/v1/ (served by connectors) and the same
// operations for the CLI. It holds no room logic: every change to a room
// is appended to the room's partition stream as a command the workers
// apply (ordered with client events, applied once, in the audit log);
// reads come straight from the design's Redis keys.
package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// Defaults of Options (DefaultRevokeTTL is in config.go, from its tag).
const (
	DefaultMaxData    = 64 << 10
	DefaultPageLimit  = 50
	MaxPageLimit      = 1000
	idempotencyTTL    = 24 * time.Hour
	idempotencyWait   = 30 * time.Second // a pending record outlives a crashed request this long
	maxIdempotencyKey = 255
)

// Service performs the API's operations on one deployment's Redis.
type Service struct {
	c         *streams.Client
	revokeTTL time.Duration
	maxData   int
	now       func() time.Time
}

// Options of NewService; nil means defaults.
type Options struct {
	// RevokeTTL is how long a token revocation lasts (longer than the
	// tokens live).
	RevokeTTL time.Duration
	// MaxData bounds the data of a published event, in bytes.
	MaxData int
}

// NewService returns the operations on c.
func NewService(c *streams.Client, opts *Options) *Service {
	s := &Service{c: c, revokeTTL: DefaultRevokeTTL, maxData: DefaultMaxData, now: time.Now}
	if opts != nil && opts.RevokeTTL > 0 {
		s.revokeTTL = opts.RevokeTTL
	}
	if opts != nil && opts.MaxData > 0 {
		s.maxData = opts.MaxData
	}
	return s
}

// Error is a refusal with its HTTP status.
type Error struct {
	Status int
	Err    *schemas.Error
}

func (e *Error) Error() string { return e.Err.Error() }

func badField(field, format string, args ...any) *Error {
	e := schemas.Errorf(schemas.CodeInvalidPayload, field+" "+format, args...)
	e.Field = field
	return &Error{Status: 400, Err: e}
}

func notFound(format string, args ...any) *Error {
	return &Error{Status: 404, Err: schemas.Errorf(schemas.CodeNotFound, format, args...)}
}

func conflict(code schemas.Code, format string, args ...any) *Error {
	return &Error{Status: 409, Err: schemas.Errorf(code, format, args...)}
}

func checkID(field, s string) *Error {
	if s == "" {
		return badField(field, "is required")
	}
	if !schemas.ValidID(s) {
		return badField(field, "must be 1-%d characters of letters, digits and _-.:@|/+=~", schemas.MaxIDLen)
	}
	return nil
}

// Accepted is the answer to a change: the id of its entry in the room's
// partition stream (the workers apply it shortly after).
type Accepted struct {
	EntryID string `json:"entryId"`
	RoomID  string `json:"roomId"`
	// Repeated: an earlier request with the same Idempotency-Key was
	// accepted as this entry; nothing new was appended.
	Repeated bool `json:"repeated,omitempty"`
}

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
	if file.Size < 0 || file.Size > schemas.MaxFileSize {
		return nil, badField("data.file.size", "must be between 0 and %d", int64(schemas.MaxFileSize))
	}
	if file.MimeType == "" {
		file.MimeType = "application/octet-stream"
	} else if len(file.MimeType) > schemas.MaxNameLen || !printable(file.MimeType) {
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

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Publish appends a server event for room. With an idempotency key, a
// request repeated with the same key (and the same room, event and data)
// answers the first one's entry and appends nothing; should the first
// one's record be lost between its append and its answer, the entry
// carries the key's digest as a socket event number, so the workers apply
// a second append of it once.
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
	won, err := rdb.SetNX(ctx, key, "pending "+fprint, idempotencyWait).Result()
	if err != nil {
		return nil, err
	}
	if !won {
		v, err := rdb.Get(ctx, key).Result()
		if errors.Is(err, redis.Nil) {
			return nil, conflict(schemas.CodeConflict, "a request with this Idempotency-Key was just abandoned; retry")
		}
		if err != nil {
			return nil, err
		}
		state, rest, _ := strings.Cut(v, " ")
		gotPrint, id, _ := strings.Cut(rest, " ")
		if gotPrint != fprint {
			return nil, conflict(schemas.CodeConflict, "this Idempotency-Key was used for another request to room %s", room)
		}
		if state == "pending" {
			return nil, conflict(schemas.CodeConflict, "a request with this Idempotency-Key is in progress; retry")
		}
		return &Accepted{EntryID: id, RoomID: room, Repeated: true}, nil
	}
	env.SocketID, env.Origin, env.Seq = "api:"+digest, digest, 1
	acc, err := s.append(ctx, env)
	if err != nil {
		_ = rdb.Del(context.WithoutCancel(ctx), key).Err()
		return nil, err
	}
	// Should this fail, the answer stands all the same: a retry after the
	// pending record expires is appended again, and applied once (see
	// above).
	_ = rdb.Set(ctx, key, "done "+fprint+" "+acc.EntryID, idempotencyTTL).Err()
	return acc, nil
}

func (s *Service) append(ctx context.Context, env *streams.Envelope) (*Accepted, error) {
	env.At = s.now()
	id, err := s.c.Append(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("append %s to room %s: %w", env.Type, env.RoomID, err)
	}
	return &Accepted{EntryID: id, RoomID: env.RoomID}, nil
}

func (s *Service) roomExists(ctx context.Context, room string) error {
	n, err := s.c.Redis().Exists(ctx, s.c.Keys.Room(room)).Result()
	if err != nil {
		return err
	}
	if n == 0 {
		return notFound("room %s does not exist", room)
	}
	return nil
}

// RemoveMember removes user from room: every socket of theirs leaves it
// (user-left, reason "removed").
func (s *Service) RemoveMember(ctx context.Context, room, user string) (*Accepted, error) {
	if err := checkID("roomId", room); err != nil {
		return nil, err
	}
	if err := checkID("userId", user); err != nil {
		return nil, err
	}
	if err := s.roomExists(ctx, room); err != nil {
		return nil, err
	}
	in, err := s.c.Redis().SIsMember(ctx, s.c.Keys.RoomUsers(room), user).Result()
	if err != nil {
		return nil, err
	}
	if !in {
		return nil, notFound("user %s is not in room %s", user, room)
	}
	return s.append(ctx, &streams.Envelope{Type: schemas.CmdRemoveMember, RoomID: room, UserID: user,
		Reason: schemas.ReasonRemoved, Via: schemas.ViaAPI})
}

// Unlock releases room's lock whoever holds it (room-unlocked, reason
// "operator"); 409 when the room is not locked.
func (s *Service) Unlock(ctx context.Context, room string) (*Accepted, error) {
	if err := checkID("roomId", room); err != nil {
		return nil, err
	}
	locked, err := s.c.Redis().HGet(ctx, s.c.Keys.Room(room), "isLocked").Result()
	if errors.Is(err, redis.Nil) {
		return nil, notFound("room %s does not exist", room)
	}
	if err != nil {
		return nil, err
	}
	if locked != "true" {
		return nil, conflict(schemas.CodeNotLocked, "room %s is not locked", room)
	}
	return s.append(ctx, &streams.Envelope{Type: schemas.CmdOperatorUnlock, RoomID: room,
		Reason: schemas.ReasonOperator, Via: schemas.ViaAPI})
}

// Room reads the state of room: members, lock, active uploads and files.
func (s *Service) Room(ctx context.Context, room string) (*schemas.RoomSnapshot, error) {
	if err := checkID("roomId", room); err != nil {
		return nil, err
	}
	k := s.c.Keys
	var hs [4]*redis.MapStringStringCmd
	_, err := s.c.Redis().Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, key := range []string{k.Room(room), k.RoomSockets(room), k.RoomUploads(room), k.RoomFiles(room)} {
			hs[i] = p.HGetAll(ctx, key)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(hs[0].Val()) == 0 {
		return nil, notFound("room %s does not exist", room)
	}
	return snapshot(room, hs[0].Val(), hs[1].Val(), hs[2].Val(), hs[3].Val()), nil
}

// snapshot builds the room's state from its hashes (formats in
// workers/scripts/prelude.lua).
func snapshot(room string, h, sockets, uploads, files map[string]string) *schemas.RoomSnapshot {
	s := &schemas.RoomSnapshot{RoomID: room, Name: room, Members: []schemas.Member{},
		ActiveUploads: []schemas.Upload{}, Files: []schemas.File{},
		IsLocked: h["isLocked"] == "true", LockedBy: h["lockedBy"], LockedByName: h["lockedByName"],
		LockedAt: h["lockedAt"], LockReason: h["lockReason"], LastActivity: h["lastActivity"]}
	if h["name"] != "" {
		s.Name = h["name"]
	}
	seen := map[string]int{}
	for _, v := range sockets {
		f := strings.SplitN(v, "\x1f", 4)
		if len(f) < 4 {
			continue
		}
		m := schemas.Member{UserID: f[1], JoinedAt: f[2], UserName: f[3]}
		if i, ok := seen[m.UserID]; ok {
			s.Members[i].JoinedAt = min(s.Members[i].JoinedAt, m.JoinedAt)
			continue
		}
		seen[m.UserID] = len(s.Members)
		s.Members = append(s.Members, m)
	}
	sort.Slice(s.Members, func(i, j int) bool {
		a, b := s.Members[i], s.Members[j]
		return a.JoinedAt < b.JoinedAt || a.JoinedAt == b.JoinedAt && a.UserID < b.UserID
	})
	for _, v := range uploads {
		var u schemas.Upload
		if json.Unmarshal([]byte(v), &u) == nil {
			s.ActiveUploads = append(s.ActiveUploads, u)
		}
	}
	sort.Slice(s.ActiveUploads, func(i, j int) bool { return s.ActiveUploads[i].UploadID < s.ActiveUploads[j].UploadID })
	for _, v := range files {
		var f schemas.File
		if json.Unmarshal([]byte(v), &f) == nil {
			s.Files = append(s.Files, f)
		}
	}
	sort.Slice(s.Files, func(i, j int) bool {
		a, b := s.Files[i], s.Files[j]
		return a.CreatedAt < b.CreatedAt || a.CreatedAt == b.CreatedAt && a.ID < b.ID
	})
	return s
}

// RoomSummary is one room of a listing.
type RoomSummary struct {
	RoomID       string `json:"roomId"`
	Name         string `json:"name"`
	Members      int    `json:"members"`
	IsLocked     bool   `json:"isLocked"`
	LockedBy     string `json:"lockedBy,omitempty"`
	LastActivity string `json:"lastActivity,omitempty"`
}

// RoomPage is one page of rooms; NextCursor is "" after the last page.
type RoomPage struct {
	Rooms      []RoomSummary `json:"rooms"`
	NextCursor string        `json:"nextCursor"`
}

// Rooms lists rooms a page at a time. Pages follow Redis SCAN over the
// room:{R} hashes (node by node on a cluster): a room present for the
// whole listing is listed at least once, and a page may hold a few more
// rooms than limit (what one SCAN step found).
func (s *Service) Rooms(ctx context.Context, cursor string, limit int) (*RoomPage, error) {
	if limit == 0 {
		limit = DefaultPageLimit
	}
	if limit < 1 || limit > MaxPageLimit {
		return nil, badField("limit", "must be between 1 and %d", MaxPageLimit)
	}
	node, pos := 0, uint64(0)
	if cursor != "" {
		n, p, ok := strings.Cut(cursor, "-")
		var err1, err2 error
		node, err1 = strconv.Atoi(n)
		pos, err2 = strconv.ParseUint(p, 10, 64)
		if !ok || err1 != nil || err2 != nil || node < 0 {
			return nil, badField("cursor", "must be a nextCursor of an earlier page")
		}
	}
	nodes, err := s.nodes(ctx)
	if err != nil {
		return nil, err
	}
	if node >= len(nodes) {
		return nil, badField("cursor", "must be a nextCursor of an earlier page (the cluster changed: start again)")
	}
	pattern := globEscape(s.c.Keys.Prefix()) + "room:{*}"
	head := len(s.c.Keys.Prefix()) + len("room:{")
	var ids []string
	for len(ids) < limit {
		keys, next, err := nodes[node].ScanType(ctx, pos, pattern, int64(limit), "hash").Result()
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			ids = append(ids, k[head:len(k)-1])
		}
		pos = next
		if pos == 0 {
			node++
			if node >= len(nodes) {
				break
			}
		}
	}
	page := &RoomPage{Rooms: []RoomSummary{}}
	if node < len(nodes) {
		page.NextCursor = strconv.Itoa(node) + "-" + strconv.FormatUint(pos, 10)
	}
	if len(ids) == 0 {
		return page, nil
	}
	sort.Strings(ids)
	cmds := make([]*redis.SliceCmd, len(ids))
	_, err = s.c.Redis().Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HMGet(ctx, s.c.Keys.Room(id), "name", "isLocked", "lockedBy", "activeUsers", "lastActivity")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, id := range ids {
		v := cmds[i].Val()
		str := func(j int) string { x, _ := v[j].(string); return x }
		r := RoomSummary{RoomID: id, Name: str(0), IsLocked: str(1) == "true", LockedBy: str(2), LastActivity: str(4)}
		if r.Name == "" {
			r.Name = id
		}
		var users []string
		_ = json.Unmarshal([]byte(str(3)), &users)
		r.Members = len(users)
		page.Rooms = append(page.Rooms, r)
	}
	return page, nil
}

// nodes returns the Redis nodes to scan in a stable order: the client
// itself, or a cluster's masters by address.
func (s *Service) nodes(ctx context.Context) ([]redis.Cmdable, error) {
	cc, ok := s.c.Redis().(*redis.ClusterClient)
	if !ok {
		return []redis.Cmdable{s.c.Redis()}, nil
	}
	var (
		mu      sync.Mutex
		masters []*redis.Client
	)
	err := cc.ForEachMaster(ctx, func(_ context.Context, c *redis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		masters = append(masters, c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(masters, func(i, j int) bool { return masters[i].Options().Addr < masters[j].Options().Addr })
	out := make([]redis.Cmdable, len(masters))
	for i, m := range masters {
		out[i] = m
	}
	return out, nil
}

func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// SocketInfo is one socket of a user.
type SocketInfo struct {
	SocketID    string `json:"socketId"`
	Connector   string `json:"connector"`
	ConnectedAt string `json:"connectedAt,omitempty"`
	// State is "live" (connected) or "held" (dropped, recoverable until
	// its recovery window ends).
	State     string `json:"state"`
	DroppedAt string `json:"droppedAt,omitempty"`
}

// UserInfo is what GET /users/{userId} answers.
type UserInfo struct {
	UserID  string       `json:"userId"`
	Sockets []SocketInfo `json:"sockets"`
	Rooms   []string     `json:"rooms"`
	// TokensRevokedBefore: tokens issued up to this time are refused.
	TokensRevokedBefore string `json:"tokensRevokedBefore,omitempty"`
}

// User reads a user's sockets (connector, connected since) and rooms.
func (s *Service) User(ctx context.Context, user string) (*UserInfo, error) {
	if err := checkID("userId", user); err != nil {
		return nil, err
	}
	info, _, err := s.user(ctx, user)
	if err != nil {
		return nil, err
	}
	if len(info.Sockets) == 0 && len(info.Rooms) == 0 && info.TokensRevokedBefore == "" {
		return nil, notFound("user %s has no sockets and no rooms", user)
	}
	return info, nil
}

func (s *Service) user(ctx context.Context, user string) (*UserInfo, []string, error) {
	k := s.c.Keys
	rdb := s.c.Redis()
	var sids, rooms *redis.StringSliceCmd
	var revoked *redis.StringCmd
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		sids = p.SMembers(ctx, k.UserSockets(user))
		rooms = p.SMembers(ctx, k.UserRooms(user))
		revoked = p.Get(ctx, k.UserRevoked(user))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, err
	}
	info := &UserInfo{UserID: user, Sockets: []SocketInfo{}, Rooms: rooms.Val()}
	sort.Strings(info.Rooms)
	if ms, err := strconv.ParseInt(revoked.Val(), 10, 64); err == nil {
		info.TokensRevokedBefore = streams.ISOTime(time.UnixMilli(ms))
	}
	ids := sids.Val()
	sort.Strings(ids)
	cmds := make([]*redis.SliceCmd, len(ids))
	if len(ids) > 0 {
		_, err = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, sid := range ids {
				cmds[i] = p.HMGet(ctx, k.Socket(sid), "connector", "connectedAt", "state", "droppedAt")
			}
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
	}
	for i, sid := range ids {
		v := cmds[i].Val()
		str := func(j int) string { x, _ := v[j].(string); return x }
		conn, state := str(0), str(2)
		if conn == "" || state == streams.SocketClosed {
			continue // gone: its keys are being deleted
		}
		info.Sockets = append(info.Sockets, SocketInfo{SocketID: sid, Connector: conn, ConnectedAt: str(1), State: state, DroppedAt: str(3)})
	}
	return info, ids, nil
}

// DisconnectRequest is the body of POST /users/{userId}/disconnect.
type DisconnectRequest struct {
	Reason       string `json:"reason"`
	RevokeTokens bool   `json:"revokeTokens"`
}

// Disconnected is the answer to a disconnect.
type Disconnected struct {
	UserID string `json:"userId"`
	// Sockets were told to close, on Connectors.
	Sockets    []string `json:"sockets"`
	Connectors []string `json:"connectors"`
	// TokensRevokedBefore is set with revokeTokens.
	TokensRevokedBefore string `json:"tokensRevokedBefore,omitempty"`
}

// Disconnect closes every socket of user on every connector (each leaves
// its rooms with user-left, reason "server_disconnect"); with
// RevokeTokens, the user's tokens issued until now are refused at connect,
// authenticate and recovery. Each connector hears it through its own
// outbound stream.
func (s *Service) Disconnect(ctx context.Context, user string, req DisconnectRequest) (*Disconnected, error) {
	if err := checkID("userId", user); err != nil {
		return nil, err
	}
	if !schemas.ValidText(req.Reason, schemas.MaxNameLen) {
		return nil, badField("reason", "must be text of at most %d bytes without control characters", schemas.MaxNameLen)
	}
	now := s.now()
	out := &Disconnected{UserID: user, Sockets: []string{}, Connectors: []string{}}
	if req.RevokeTokens {
		// First, so that a reconnection racing this request is refused.
		if err := s.c.Revoke(ctx, user, now, s.revokeTTL); err != nil {
			return nil, err
		}
		out.TokensRevokedBefore = streams.ISOTime(now)
	}
	info, _, err := s.user(ctx, user)
	if err != nil {
		return nil, err
	}
	if len(info.Sockets) == 0 && len(info.Rooms) == 0 && !req.RevokeTokens {
		return nil, notFound("user %s has no sockets and no rooms", user)
	}
	byConn := map[string][]string{}
	for _, so := range info.Sockets {
		byConn[so.Connector] = append(byConn[so.Connector], so.SocketID)
	}
	// A connector whose heartbeat is gone reads nothing more (and its
	// stream is being deleted): the workers remove its sockets from their
	// rooms (connector_lost), and a recovery of one meets the revocation.
	conns := make([]string, 0, len(byConn))
	alive := make([]*redis.IntCmd, 0, len(byConn))
	_, err = s.c.Redis().Pipelined(ctx, func(p redis.Pipeliner) error {
		for conn := range byConn {
			conns = append(conns, conn)
			alive = append(alive, p.Exists(ctx, s.c.Keys.Connector(conn)))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, conn := range conns {
		if alive[i].Val() == 0 {
			delete(byConn, conn)
		}
	}
	body, _ := json.Marshal(map[string]string{"reason": req.Reason})
	_, err = s.c.Redis().Pipelined(ctx, func(p redis.Pipeliner) error {
		for conn, sids := range byConn {
			out.Sockets = append(out.Sockets, sids...)
			o := &streams.Outbound{Messages: []streams.Message{{Event: streams.DisconnectEvent, Body: body, To: sids}}}
			p.XAdd(ctx, s.c.OutboundArgs(conn, o, now))
			out.Connectors = append(out.Connectors, conn)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(out.Connectors)
	sort.Strings(out.Sockets)
	return out, nil
}
