package audit

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// Outcomes of a timeline event.
const (
	OutcomeApplied      = "applied"       // changed the room
	OutcomeUnchanged    = "unchanged"     // accepted, nothing to change (e.g. a disconnect of a socket already gone)
	OutcomeRepeated     = "repeated"      // the same client event appended a second time (a lost XADD reply); applied once
	OutcomeRefused      = "refused"       // refused; Status is the code its sender received
	OutcomeFailed       = "failed"        // cannot be applied (bad entry); the workers dead-letter it
	OutcomeDeadLettered = "dead-lettered" // the workers gave up on it; never applied
)

// Event is one line of a room's timeline: who asked what, when, and what
// came of it.
type Event struct {
	Time      string `json:"time"` // when the connector accepted it (ISO-8601 UTC)
	ID        string `json:"id"`   // its id in the inbound stream
	Partition int    `json:"partition"`
	Room      string `json:"room"`
	Type      string `json:"type"`
	// Origin says who issued it: "socket" (a client event), "api" (the
	// server API: a backend or an operator) or "server" (roomstream
	// itself: disconnects, moves, lock expiry).
	Origin   string   `json:"origin"`
	UserID   string   `json:"userId,omitempty"`
	UserName string   `json:"userName,omitempty"`
	Detail   string   `json:"detail,omitempty"`
	Outcome  string   `json:"outcome"`
	Status   string   `json:"status,omitempty"` // ok, noop or the refusal code
	Reason   string   `json:"reason,omitempty"` // why it was refused or failed
	Emitted  []string `json:"emitted,omitempty"`
	// RoomExpired: the room had been empty for EMPTY_ROOM_TTL and its
	// earlier state was gone when this entry came.
	RoomExpired bool `json:"roomExpired,omitempty"`
	// HistoryTrimmed: entries of this room older than the log's start
	// were trimmed (retention), so the outcome was recomputed without
	// them and may differ from the one the workers reached.
	HistoryTrimmed bool `json:"historyTrimmed,omitempty"`
}

// TimelineOptions select the entries of a timeline.
type TimelineOptions struct {
	Room string // "" = every room
	Bounds
}

// Timeline calls emit with every entry of the log within opts, in log
// order, with what applying it did. Entries before Since are replayed too
// (silently), so that outcomes are those the workers reached.
func (r *Replayer) Timeline(ctx context.Context, opts TimelineOptions, emit func(Event) error) error {
	if opts.Room != "" && !schemas.ValidID(opts.Room) {
		return fmt.Errorf("bad room id %q", opts.Room)
	}
	log, err := r.log(ctx)
	if err != nil {
		return err
	}
	parts := log.parts(opts.Room)
	total, err := log.Len(ctx, parts)
	if err != nil {
		return err
	}
	s, err := r.newScratch(ctx, "timeline", log.Partitions())
	if err != nil {
		return err
	}
	prog := startProgress(r.opts.Progress, "timeline", total)
	err = r.timeline(ctx, log, s, parts, opts, prog, emit)
	prog.finish()
	if cerr := s.close(ctx); err == nil {
		err = cerr
	}
	return err
}

func (r *Replayer) timeline(ctx context.Context, log *Log, s *scratch, parts []int, opts TimelineOptions, prog *progress, emit func(Event) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var since streams.ID
	if !opts.Since.IsZero() {
		since = idAt(opts.Since)
	}
	read := Bounds{Until: opts.Until} // replay from the start: outcomes depend on it
	size := pageSize(len(parts))
	var wg sync.WaitGroup
	srcs := make([]source[Result], len(parts))
	errs := make([]error, len(parts))
	for i, p := range parts {
		ch := make(chan Result, size)
		srcs[i] = chanSource[Result]{ch: ch, err: &errs[i]}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(ch)
			errs[i] = s.replayPartition(ctx, log, p, read, opts.Room, size, prog, func(res Result) error {
				if res.ID.Less(since) {
					return nil
				}
				select {
				case ch <- res:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			})
		}()
	}
	err := merge(ctx, srcs, func(res Result) streams.ID { return res.ID }, func(res Result) error {
		return emit(eventOf(res))
	})
	cancel()
	wg.Wait()
	return err
}

// replayPartition rebuilds partition p from the start of b, calling fn
// with each result.
func (s *scratch) replayPartition(ctx context.Context, log *Log, p int, b Bounds, room string, size int64, prog *progress, fn func(Result) error) error {
	rb, err := s.rebuilder(ctx, log, p)
	if err != nil {
		return err
	}
	cur := log.Cursor(p, b, room, size)
	cur.prog = prog
	for {
		e, ok, err := cur.Next(ctx)
		if err != nil || !ok {
			return err
		}
		res, err := rb.apply(ctx, e)
		if err != nil {
			return err
		}
		if err := fn(res); err != nil {
			return err
		}
	}
}

// eventOf turns a replay result into a timeline event.
func eventOf(res Result) Event {
	ev := Event{ID: res.ID.String(), Partition: res.Partition, Room: res.Room(), Time: streams.ISOTime(res.ID.Time()),
		RoomExpired: res.Expired, HistoryTrimmed: !res.Trusted}
	if t, _ := res.Values["type"].(string); t != "" {
		ev.Type = t
	}
	if env := res.Env; env != nil {
		ev.Time, ev.Type, ev.UserID, ev.UserName = streams.ISOTime(env.At), env.Type, env.UserID, env.UserName
		ev.Detail = describe(env)
		ev.Origin = originOf(env)
	}
	switch {
	case res.DeadLetter != "":
		ev.Outcome, ev.Reason = OutcomeDeadLettered, res.DeadLetter
	case res.Failure != "":
		ev.Outcome, ev.Reason = OutcomeFailed, res.Failure
	default:
		ev.Status, ev.Emitted = res.Outcome.Status, res.Outcome.Events
		switch res.Outcome.Status {
		case "ok":
			ev.Outcome = OutcomeApplied
		case "noop":
			ev.Outcome = OutcomeUnchanged
		case "dup":
			ev.Outcome = OutcomeRepeated
		default:
			ev.Outcome, ev.Reason = OutcomeRefused, res.Outcome.Message
		}
	}
	return ev
}

// Origins of a timeline event.
const (
	OriginSocket = "socket"
	OriginAPI    = "api"
	OriginServer = "server"
)

func originOf(env *streams.Envelope) string {
	switch {
	case env.Via == schemas.ViaAPI:
		return OriginAPI
	case schemas.IsInternal(env.Type):
		return OriginServer
	}
	return OriginSocket
}

// OutcomeText renders the outcome column of the table: "applied",
// "refused: room_locked", with "?" when the room's history was trimmed.
func (e Event) OutcomeText() string {
	s := e.Outcome
	if e.Outcome == OutcomeRefused && e.Status != "" {
		s += ": " + e.Status
	}
	if e.HistoryTrimmed {
		s += " ?"
	}
	return s
}

// Who renders the user as "Name (id)", or the origin of a command no
// user sent: "(api)" for the server API, "(server)" for roomstream's own.
func (e Event) Who() string {
	switch {
	case e.Origin == OriginAPI:
		return "(api)"
	case e.UserID == "":
		return "(server)"
	case e.UserName == "" || e.UserName == e.UserID:
		return e.UserID
	}
	return e.UserName + " (" + e.UserID + ")"
}

// Text renders the detail column: what was asked, and why it was refused.
func (e Event) Text() string {
	var parts []string
	if e.RoomExpired {
		parts = append(parts, "room had expired (empty too long): starts afresh")
	}
	if e.Detail != "" {
		parts = append(parts, e.Detail)
	}
	if e.Reason != "" {
		parts = append(parts, "why: "+e.Reason)
	}
	return strings.Join(parts, "; ")
}
