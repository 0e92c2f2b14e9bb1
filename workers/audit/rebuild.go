package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
	"github.com/roomstream/roomstream/workers"
)

// replayToken is the lease token replay applies with: the scratch prefix
// has no other writer, so any constant works.
const replayToken = 1

// Result is what replaying one entry did.
type Result struct {
	Entry
	// Env is the decoded entry; nil when it cannot be decoded.
	Env *streams.Envelope
	// Outcome is the Applier's, for entries that were applied.
	Outcome workers.Outcome
	// Failure says why the entry cannot be applied at all (the workers
	// dead-letter such entries): undecodable, bad payload, unknown type.
	Failure string
	// DeadLetter is the error with which the workers dead-lettered this
	// entry; replay does not apply it either.
	DeadLetter string
	// Expired is set when the room had been empty for EMPTY_ROOM_TTL
	// before this entry: its earlier state was gone when it came.
	Expired bool
	// Trusted is false while the room's state depends on entries trimmed
	// from the log: the outcome was computed without them and may differ
	// from the one the workers saw.
	Trusted bool
}

// rebuilder applies the entries of one partition, in order, to the
// scratch prefix. It simulates what time does to live rooms (expiry of
// empty rooms) and tracks which rooms it can vouch for.
type rebuilder struct {
	p       int
	s       *scratch
	hist    History
	dead    map[string]string
	ttl     time.Duration
	rooms   map[string]*roomTrack
	applied int64
}

// roomTrack is what the rebuilder remembers of a room. Rooms of an
// untrimmed partition that are not empty need none.
type roomTrack struct {
	trusted   bool
	createdAt string    // the live room's createdAt (trimmed partitions only)
	emptyAt   time.Time // when the log emptied the room; zero while it has members
}

func (s *scratch) rebuilder(ctx context.Context, log *Log, p int) (*rebuilder, error) {
	hist, err := log.History(ctx, p)
	if err != nil {
		return nil, err
	}
	dead, err := log.DeadLettered(ctx, p)
	if err != nil {
		return nil, err
	}
	return &rebuilder{p: p, s: s, hist: hist, dead: dead, ttl: s.r.opts.EmptyRoomTTL, rooms: map[string]*roomTrack{}}, nil
}

// track returns room's track, creating it where one is needed. In a
// trimmed partition a room is trusted only once the entry that created
// its live state has been replayed (its live createdAt tells which).
func (b *rebuilder) track(ctx context.Context, room string, create bool) (*roomTrack, error) {
	if t, ok := b.rooms[room]; ok || !create {
		return t, nil
	}
	t := &roomTrack{trusted: !b.hist.Trimmed}
	if b.hist.Trimmed {
		v, err := b.s.r.rdb.HGet(ctx, b.s.r.state.Room(room), "createdAt").Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("read createdAt of room %s: %w", room, err)
		}
		t.createdAt = v
	}
	b.rooms[room] = t
	return t, nil
}

// trusted reports whether room's rebuilt state can be compared.
func (b *rebuilder) trusted(room string) bool {
	if t, ok := b.rooms[room]; ok {
		return t.trusted
	}
	return !b.hist.Trimmed
}

// apply replays one entry. Errors are Redis failures; everything that is
// wrong with the entry itself is reported in the result.
func (b *rebuilder) apply(ctx context.Context, e Entry) (Result, error) {
	res := Result{Entry: e, Trusted: true}
	env, err := e.Envelope()
	if err != nil {
		res.Failure = err.Error()
		return res, nil
	}
	res.Env = env
	if !schemas.ValidID(env.RoomID) {
		res.Failure = fmt.Sprintf("bad room id %q", env.RoomID)
		return res, nil
	}
	t, err := b.track(ctx, env.RoomID, b.hist.Trimmed)
	if err != nil {
		return res, err
	}
	if msg, ok := b.dead[e.ID.String()]; ok {
		res.DeadLetter = msg
		res.Trusted = t == nil || t.trusted
		return res, nil
	}
	if t != nil {
		if !t.emptyAt.IsZero() && !env.At.Before(t.emptyAt.Add(b.ttl)) {
			// Empty for EMPTY_ROOM_TTL: the live keys expired by now.
			if err := b.forget(ctx, env.RoomID); err != nil {
				return res, err
			}
			t.emptyAt, res.Expired = time.Time{}, true
		}
		if !t.trusted && t.createdAt != "" && env.Type == schemas.EventJoinRoom && streams.ISOTime(env.At) == t.createdAt {
			// This join created the live room: nothing of it existed before.
			if err := b.forget(ctx, env.RoomID); err != nil {
				return res, err
			}
			t.trusted = true
		}
		res.Trusted = t.trusted
	}
	out, err := workers.SafeApply(ctx, b.s.applier, b.p, replayToken, env)
	if err != nil {
		if errors.Is(err, workers.ErrPermanent) {
			res.Failure = err.Error()
			return res, nil
		}
		return res, fmt.Errorf("replay entry %s of partition %d: %w", e.ID, e.Partition, err)
	}
	res.Outcome = out
	b.applied++
	return res, b.afterApply(ctx, env, out, t)
}

// afterApply notes when the entry emptied or refilled the room.
func (b *rebuilder) afterApply(ctx context.Context, env *streams.Envelope, out workers.Outcome, t *roomTrack) error {
	if out.Status != "ok" {
		return nil
	}
	switch env.Type {
	case schemas.EventJoinRoom:
		if t != nil {
			t.emptyAt = time.Time{}
		}
	case schemas.EventLeaveRoom, schemas.CmdDisconnect:
		n, err := b.s.c.Redis().HLen(ctx, b.s.c.Keys.RoomSockets(env.RoomID)).Result()
		if err != nil {
			return fmt.Errorf("read sockets of rebuilt room %s: %w", env.RoomID, err)
		}
		if n > 0 {
			return nil
		}
		if t == nil {
			var err error
			if t, err = b.track(ctx, env.RoomID, true); err != nil {
				return err
			}
		}
		t.emptyAt = env.At
	}
	return nil
}

// forget deletes the rebuilt state of a room (not its applied marker, so
// order is still checked), as expiry does to the live keys.
func (b *rebuilder) forget(ctx context.Context, room string) error {
	if err := b.s.c.Redis().Del(ctx, workers.RoomStateKeys(b.s.c.Keys, room)...).Err(); err != nil {
		return fmt.Errorf("expire rebuilt room %s: %w", room, err)
	}
	return nil
}

// expiresBy returns when room's state expires (live and rebuilt alike),
// zero when it has members.
func (b *rebuilder) expiresBy(room string) time.Time {
	t, ok := b.rooms[room]
	if !ok || t.emptyAt.IsZero() {
		return time.Time{}
	}
	return t.emptyAt.Add(b.ttl)
}
