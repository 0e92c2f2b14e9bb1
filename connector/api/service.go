package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// DefaultMaxData is Options.MaxData's default (DefaultRevokeTTL, the
// other one, is read from its variable's tag in config.go).
const DefaultMaxData = 64 << 10

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

// Accepted is the answer to a change: the id of its entry in the room's
// partition stream (the workers apply it shortly after).
type Accepted struct {
	EntryID string `json:"entryId"`
	RoomID  string `json:"roomId"`
	// Repeated: an earlier request with the same Idempotency-Key was
	// accepted as this entry; nothing new was appended.
	Repeated bool `json:"repeated,omitempty"`
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
