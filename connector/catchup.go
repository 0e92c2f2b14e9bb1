package connector

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/connector/protocol"
	"github.com/roomstream/roomstream/streams"
)

// Catching up: what a recovered socket missed is read back from its old
// connector's outbound stream and resent (recovery.go runs it).

// dedupSeedWindow is how far before the client's offset catching up looks
// to learn what was already delivered (redeliveries after a worker crash
// come within the claim and lease timeouts, well under this), and
// dedupSeedCount how many entries it reads there at most: the latest
// ones, which are those a redelivery repeats.
const (
	dedupSeedWindow = 30 * time.Second
	dedupSeedCount  = 1000
)

// catchUpPage is how many entries one read of the old stream returns.
const catchUpPage = 1000

// DefaultRecoveryMaxEntries is RECOVERY_MAX_ENTRIES's default (and the
// bound of a Config built in code without it).
const DefaultRecoveryMaxEntries = 20000

// errTooMuchMissed: the socket missed more than a recovery reads
// (RECOVERY_MAX_ENTRIES); it gets a fresh session, as when its recovery
// window has passed.
var errTooMuchMissed = errors.New("connector: too much missed to recover")

// catchUp returns the frames socket sid missed on connector old's stream
// after offset (up to end), and the offset the socket is at afterwards.
// rooms are the socket's rooms now.
//
// Room events name their room, not their recipients, so catching up
// follows the socket's membership through the stream: the $join and
// $leave messages for it mark where it entered and left each room (a
// move to this connector ends with a $leave on the old stream). Its
// membership at the offset is what the first such message after it says
// (a $leave: it was in; a $join: it was not), or, for a room with none,
// whether the room is among its rooms now.
//
// It reads at most RECOVERY_MAX_ENTRIES entries after the offset, in
// pages, over all its passes: past that it returns errTooMuchMissed
// rather than hold the stream's whole window for one socket.
func (s *Server) catchUp(ctx context.Context, old, sid string, after streams.ID, end, base string, rooms []string) ([][]byte, string, error) {
	want := make(map[string]bool, len(rooms))
	for _, r := range rooms {
		want[r] = true
	}
	// Learn what was delivered just before the offset.
	seedFrom := streams.IDAt(after.Time().Add(-dedupSeedWindow))
	seed, err := s.c.OutboundRevRange(ctx, old, after.String(), seedFrom.String(), dedupSeedCount)
	if err != nil {
		return nil, base, err
	}
	budget := s.cfg.RecoveryMaxEntries
	if budget <= 0 {
		budget = DefaultRecoveryMaxEntries
	}
	for {
		frames, last, more, err := s.catchUpPass(ctx, old, sid, after, end, base, want, seed, &budget)
		if err != nil || len(more) == 0 {
			return frames, last, err
		}
		// Rooms the socket left after the offset: read again with them.
		for _, r := range more {
			want[r] = true
		}
	}
}

// catchUpItem is one thing catching up met for the socket: a frame (of a
// room event when room is set, else addressed to the socket) or a
// membership change.
type catchUpItem struct {
	room  string
	op    string // "", streams.JoinEvent or streams.LeaveEvent
	frame []byte
}

// catchUpPass reads the stream once, keeping the events of the rooms in
// want and of rooms the socket joins on the way. more lists rooms outside
// want that the socket was in at the offset (it left them later): the
// caller reads again with them.
// seed holds the entries before the offset, newest first; budget is what
// is left of RECOVERY_MAX_ENTRIES.
func (s *Server) catchUpPass(ctx context.Context, old, sid string, after streams.ID, end, base string, want map[string]bool,
	seed []redis.XMessage, budget *int) (frames [][]byte, last string, more []string, err error) {
	// On its own stream the socket's offsets are the entries' ids; from
	// another connector's, they are this stream's position (base).
	same := old == s.id
	d := newDedup()
	for i := len(seed) - 1; i >= 0; i-- {
		if o, err := streams.DecodeOutbound(seed[i].ID, seed[i].Values); err == nil {
			d.fresh(o)
		}
	}
	last = base
	if same {
		last = after.String()
	}
	var items []catchUpItem
	firstOp := map[string]string{}
	start := "(" + after.String()
	for {
		if *budget <= 0 {
			return nil, last, nil, errTooMuchMissed
		}
		page := min(catchUpPage, *budget+1) // one more: is there more than the budget?
		msgs, err := s.c.OutboundRange(ctx, old, start, end, int64(page))
		if err != nil {
			return nil, last, nil, err
		}
		*budget -= len(msgs)
		if *budget < 0 {
			return nil, last, nil, errTooMuchMissed
		}
		for _, m := range msgs {
			o, err := streams.DecodeOutbound(m.ID, m.Values)
			if err != nil || !d.fresh(o) {
				continue
			}
			off := base
			if same {
				off, last = m.ID, m.ID
			}
			for _, msg := range o.Messages {
				switch {
				case msg.Event == streams.JoinEvent || msg.Event == streams.LeaveEvent:
					if !contains(msg.To, sid) {
						continue
					}
					if _, seen := firstOp[msg.Room]; !seen {
						firstOp[msg.Room] = msg.Event
					}
					items = append(items, catchUpItem{room: msg.Room, op: msg.Event})
				case msg.Event == "" || msg.Event[0] == '$':
				case msg.Room != "":
					if want[msg.Room] || firstOp[msg.Room] != "" {
						items = append(items, catchUpItem{room: msg.Room, frame: protocol.EventFrame(msg.Event, off, msg.Body)})
					}
				case contains(msg.To, sid):
					items = append(items, catchUpItem{frame: protocol.EventFrame(msg.Event, off, msg.Body)})
				}
			}
		}
		if len(msgs) < page {
			break
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
	in := map[string]bool{}
	for room, op := range firstOp {
		if op == streams.LeaveEvent && !want[room] {
			more = append(more, room)
		}
		in[room] = op == streams.LeaveEvent
	}
	if len(more) > 0 {
		return nil, last, more, nil
	}
	for room := range want {
		if _, seen := firstOp[room]; !seen {
			in[room] = true
		}
	}
	for _, it := range items {
		switch {
		case it.op == streams.JoinEvent:
			in[it.room] = true
		case it.op == streams.LeaveEvent:
			in[it.room] = false
		case it.room == "" || in[it.room]:
			frames = append(frames, it.frame)
		}
	}
	return frames, last, nil, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
