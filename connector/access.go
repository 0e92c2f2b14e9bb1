package connector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/roomstream/roomstream/connector/auth"
	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// Room access (ROOM_ACCESS): who may join which room. The connector
// decides before a join is appended, so a refused join never reaches the
// log:
//
//   - open: any authenticated user, any room (the design's behaviour);
//   - claims: the rooms the token's `rooms` claim names (ids, or
//     prefixes ending in *); a token without the claim joins none, and a
//     malformed claim makes the token invalid;
//   - proxy: the application's backend decides (ROOM_ACCESS_URL), as
//     Centrifugo's subscribe proxy does: a POST of {userId, roomId,
//     claims}; 200 with {"allow": true} admits, any other answer refuses
//     (forbidden), and no answer, a timeout or a 5xx is `unavailable`.
//     Answers are cached briefly per user and room, in a bounded cache,
//     and the requests in flight are bounded.
//
// A fresh token given through `authenticate` (or a recovery) replaces the
// socket's claims: the rooms it no longer allows are left, and the room
// hears user-left with reason access_revoked.

// Room access modes.
const (
	AccessOpen   = "open"
	AccessClaims = "claims"
	AccessProxy  = "proxy"
)

// maxAccessAnswer bounds the body of the backend's answer read.
const maxAccessAnswer = 64 << 10

// roomAccess asks the backend of ROOM_ACCESS=proxy.
type roomAccess struct {
	url     string
	client  *http.Client
	timeout time.Duration
	ttl     time.Duration // how long an answer is reused (0: never)
	size    int           // answers kept at most
	slots   chan struct{} // one per request in flight

	mu    sync.Mutex
	cache map[accessKey]accessAnswer
}

type accessKey struct{ user, room string }

type accessAnswer struct {
	allow bool
	until time.Time
}

func newRoomAccess(cfg Config) *roomAccess {
	if cfg.RoomAccess != AccessProxy {
		return nil
	}
	return &roomAccess{
		url: cfg.RoomAccessURL,
		client: &http.Client{
			Timeout: cfg.RoomAccessTimeout,
			// A redirect is an answer other than "allow": not followed.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport:     &http.Transport{MaxIdleConnsPerHost: cfg.RoomAccessConcurrency, IdleConnTimeout: time.Minute},
		},
		timeout: cfg.RoomAccessTimeout,
		ttl:     cfg.RoomAccessCache,
		size:    cfg.RoomAccessCacheSize,
		slots:   make(chan struct{}, cfg.RoomAccessConcurrency),
		cache:   map[accessKey]accessAnswer{},
	}
}

// errAccessUnavailable: the backend did not answer (timeout, connection
// refused, 5xx), or every request slot stayed busy.
var errAccessUnavailable = errors.New("connector: room access backend unavailable")

// allowed asks the backend whether ident may join room; cached, a recent
// answer for the same user and room is reused.
func (a *roomAccess) allowed(ctx context.Context, ident auth.Identity, room string, cached bool) (bool, error) {
	key := accessKey{ident.UserID, room}
	if cached && a.ttl > 0 {
		a.mu.Lock()
		ans, ok := a.cache[key]
		a.mu.Unlock()
		if ok && time.Now().Before(ans.until) {
			return ans.allow, nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	select {
	case a.slots <- struct{}{}:
		defer func() { <-a.slots }()
	case <-ctx.Done():
		return false, errAccessUnavailable
	}
	allow, err := a.ask(ctx, ident, room)
	if err != nil {
		return false, err
	}
	a.remember(key, allow)
	return allow, nil
}

// ask makes one request to the backend.
func (a *roomAccess) ask(ctx context.Context, ident auth.Identity, room string) (bool, error) {
	claims := ident.Claims
	if len(claims) == 0 {
		claims = json.RawMessage("{}")
	}
	body, err := json.Marshal(struct {
		UserID string          `json:"userId"`
		RoomID string          `json:"roomId"`
		Claims json.RawMessage `json:"claims"`
	}{ident.UserID, room, claims})
	if err != nil {
		return false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := a.client.Do(req)
	if err != nil {
		return false, errors.Join(errAccessUnavailable, err)
	}
	defer res.Body.Close()
	if res.StatusCode >= 500 {
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxAccessAnswer))
		return false, errors.Join(errAccessUnavailable, errors.New(res.Status))
	}
	var ans struct {
		Allow bool `json:"allow"`
	}
	if res.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(res.Body, maxAccessAnswer)).Decode(&ans) != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxAccessAnswer))
		return false, nil
	}
	return ans.Allow, nil
}

// remember caches an answer. A full cache first drops the answers that
// expired, then, if still full, any others.
func (a *roomAccess) remember(key accessKey, allow bool) {
	if a.ttl <= 0 {
		return
	}
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.cache[key]; !ok && len(a.cache) >= a.size {
		for k, v := range a.cache {
			if now.After(v.until) {
				delete(a.cache, k)
			}
		}
		for k := range a.cache {
			if len(a.cache) < a.size {
				break
			}
			delete(a.cache, k)
		}
	}
	a.cache[key] = accessAnswer{allow: allow, until: now.Add(a.ttl)}
}

// verify checks a token as the verifier does, and its rooms claim where
// rooms come from claims. The raw claims are kept only for a backend that
// asks for them.
func (s *Server) verify(token string) (auth.Identity, *schemas.Error) {
	ident, verr := s.verifier.Verify(token)
	if verr != nil {
		return ident, verr
	}
	if s.cfg.RoomAccess == AccessClaims && ident.Rooms.Invalid != "" {
		return auth.Identity{}, schemas.Errorf(schemas.CodeInvalidToken, "token rejected: %s", ident.Rooms.Invalid)
	}
	if s.cfg.RoomAccess != AccessProxy {
		ident.Claims = nil
	}
	return ident, nil
}

// mayJoin tells whether ident may join room: nil, or the refusal
// (forbidden; unavailable when the backend does not answer). cached
// allows a recent answer of the backend.
func (s *Server) mayJoin(ctx context.Context, ident auth.Identity, room string, cached bool) *schemas.Error {
	switch s.cfg.RoomAccess {
	case AccessClaims:
		switch {
		case !ident.Rooms.Present:
			s.m.access.WithLabelValues("forbidden").Inc()
			return schemas.NewError(schemas.CodeForbidden, "your token names no rooms (rooms claim), and this server admits to rooms by it")
		case !ident.Rooms.Allows(room):
			s.m.access.WithLabelValues("forbidden").Inc()
			return schemas.Errorf(schemas.CodeForbidden, "your token does not allow room %s", room)
		}
	case AccessProxy:
		allow, err := s.access.allowed(ctx, ident, room, cached)
		switch {
		case err != nil:
			s.m.access.WithLabelValues("unavailable").Inc()
			s.log.Warn("room access backend did not answer", "user", ident.UserID, "room", room, "err", err)
			return schemas.NewError(schemas.CodeUnavailable, "room access could not be checked; retry")
		case !allow:
			s.m.access.WithLabelValues("forbidden").Inc()
			return schemas.Errorf(schemas.CodeForbidden, "you may not join room %s", room)
		}
	default:
		return nil
	}
	s.m.access.WithLabelValues("allowed").Inc()
	return nil
}

// recheckRooms leaves the rooms the socket's token no longer allows
// (its claims changed: `authenticate`, or a recovery with a new token).
// cached allows recent answers of the backend. A backend that does not
// answer leaves the rooms as they are: the socket was admitted, and an
// outage of the backend is no revocation.
func (so *socket) recheckRooms(cached bool) {
	s := so.srv
	if s.cfg.RoomAccess == AccessOpen {
		return
	}
	rooms := so.rooms.list()
	denied := make([]bool, len(rooms))
	var wg sync.WaitGroup
	for i, room := range rooms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := s.mayJoin(context.Background(), so.ident, room, cached)
			denied[i] = e != nil && e.Code == schemas.CodeForbidden
		}()
	}
	wg.Wait()
	for i, room := range rooms {
		if denied[i] && !so.leaveRevoked(room) {
			return
		}
	}
}

// leaveRevoked has the socket leave room as a leave-room would, with
// user-left's reason access_revoked. A leave that cannot be appended ends
// the connection instead (its rooms are then left as for any closed
// socket): a socket must not stay where its token no longer lets it.
func (so *socket) leaveRevoked(room string) bool {
	s := so.srv
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd, verr := schemas.ParseCommand(schemas.EventLeaveRoom, mustJSON(schemas.LeaveRoomPayload{RoomID: room}), so.ident.UserID)
	if verr != nil {
		s.log.Error("leave a room access no longer allows", "room", room, "err", verr)
		return false
	}
	so.seq++
	env := &streams.Envelope{Type: schemas.EventLeaveRoom, RoomID: room, UserID: so.ident.UserID, UserName: so.ident.UserName,
		SessionID: so.session, SocketID: so.sid, ConnectorID: s.id, Origin: so.origin, Seq: so.seq,
		Data: cmd.Data, Reason: schemas.ReasonAccessRevoked, At: s.now()}
	if _, err := s.appendRetrying(ctx, env); err != nil {
		s.log.Warn("leave a room access no longer allows: not appended; disconnecting", "socket", so.sid, "room", room, "err", err)
		so.end(causeServer, websocket.StatusTryAgainLater, "could not leave a room your token no longer allows")
		return false
	}
	s.log.Info("socket left a room its new token does not allow", "socket", so.sid, "user", so.ident.UserID, "room", room)
	so.leftRoom(ctx, room)
	return true
}
