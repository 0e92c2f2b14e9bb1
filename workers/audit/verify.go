package audit

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// Room verdicts of Verify.
const (
	RoomMatches   = "matches"   // the live state is what the log leads to
	RoomDiffers   = "differs"   // it is not: Diffs say where
	RoomTrimmed   = "trimmed"   // the room is older than the log: its state cannot be rebuilt
	RoomUnsettled = "unsettled" // the live room is at another entry than the replay (busy, lagging, or a shorter log): not compared
	RoomExpiring  = "expiring"  // the room is expiring right now: not compared
)

// RoomReport is the verdict on one room.
type RoomReport struct {
	Room   string `json:"room"`
	Status string `json:"status"`
	Note   string `json:"note,omitempty"`
	Diffs  []Diff `json:"diffs,omitempty"`
}

// Summary counts what Verify saw.
type Summary struct {
	Entries   int64         `json:"entries"` // entries replayed
	Rooms     int           `json:"rooms"`
	Matching  int           `json:"matching"`
	Differing int           `json:"differing"`
	Trimmed   int           `json:"trimmed"`
	Unsettled int           `json:"unsettled"`
	Expiring  int           `json:"expiring"`
	Elapsed   time.Duration `json:"elapsedNs"`
}

// VerifyOptions tune Verify.
type VerifyOptions struct {
	Room string // "" = every room
	// SettleRounds is how many times rooms whose live state is at another
	// entry than the rebuilt one are looked at again (after reading what
	// the log gained meanwhile) before they are reported unsettled.
	// 0 means 5; negative means none.
	SettleRounds int
	// SettleWait is the pause before each of those rounds (0: 1s).
	SettleWait time.Duration
	// ExpirySlack is how close to its expiry time a room is not compared:
	// live rooms expire by the clock of the worker that emptied them,
	// rebuilt ones by the time in the entry (0: 1m).
	ExpirySlack time.Duration
}

// Verify rebuilds room state from the log in a scratch prefix with the
// workers' Applier and compares it with the live state, room by room,
// calling report with each verdict. On a healthy deployment every room
// matches (or is older than the log, or busy).
func (r *Replayer) Verify(ctx context.Context, opts VerifyOptions, report func(RoomReport) error) (Summary, error) {
	start := time.Now()
	if opts.Room != "" && !schemas.ValidID(opts.Room) {
		return Summary{}, fmt.Errorf("bad room id %q", opts.Room)
	}
	if opts.SettleRounds == 0 {
		opts.SettleRounds = 5
	}
	if opts.SettleWait <= 0 {
		opts.SettleWait = time.Second
	}
	if opts.ExpirySlack <= 0 {
		opts.ExpirySlack = time.Minute
	}
	log, err := r.log(ctx)
	if err != nil {
		return Summary{}, err
	}
	parts := log.parts(opts.Room)
	total, err := log.Len(ctx, parts)
	if err != nil {
		return Summary{}, err
	}
	s, err := r.newScratch(ctx, "verify", log.Partitions())
	if err != nil {
		return Summary{}, err
	}
	v := &verifier{r: r, log: log, s: s, opts: opts, report: report,
		rbs: make([]*rebuilder, log.Partitions()), curs: make([]*Cursor, log.Partitions())}
	prog := startProgress(r.opts.Progress, "verify", total)
	err = v.replay(ctx, parts, prog)
	prog.finish()
	if err == nil {
		err = v.compare(ctx)
	}
	for _, rb := range v.rbs {
		if rb != nil {
			v.sum.Entries += rb.applied
		}
	}
	v.sum.Elapsed = time.Since(start)
	if cerr := s.close(ctx); err == nil {
		err = cerr
	}
	return v.sum, err
}

type verifier struct {
	r      *Replayer
	log    *Log
	s      *scratch
	opts   VerifyOptions
	report func(RoomReport) error
	rbs    []*rebuilder // by partition
	curs   []*Cursor    // by partition, kept to read what the log gains
	sum    Summary
}

// replay rebuilds the partitions, several at once.
func (v *verifier) replay(ctx context.Context, parts []int, prog *progress) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	size := pageSize(min(len(parts), v.r.opts.Concurrency))
	sem := make(chan struct{}, v.r.opts.Concurrency)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for _, p := range parts {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := v.replayPartition(ctx, p, size, prog)
			if err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// replayPartition applies partition p up to its current end; called again
// it applies what was added since.
func (v *verifier) replayPartition(ctx context.Context, p int, size int64, prog *progress) error {
	if v.rbs[p] == nil {
		rb, err := v.s.rebuilder(ctx, v.log, p)
		if err != nil {
			return err
		}
		v.rbs[p] = rb
		v.curs[p] = v.log.Cursor(p, Bounds{}, v.opts.Room, size)
		v.curs[p].prog = prog
	}
	rb, cur := v.rbs[p], v.curs[p]
	for {
		e, ok, err := cur.Next(ctx)
		if err != nil || !ok {
			return err
		}
		if _, err := rb.apply(ctx, e); err != nil {
			return err
		}
	}
}

// compare judges every room that is in the rebuilt state or in the live
// state, then looks again at the unsettled ones.
func (v *verifier) compare(ctx context.Context) error {
	var unsettled []string
	judge := func(room string, last bool) error {
		rep, err := v.judge(ctx, room)
		if err != nil {
			return err
		}
		if rep.Status == RoomUnsettled && !last {
			unsettled = append(unsettled, room)
			return nil
		}
		return v.emit(rep)
	}
	last := v.opts.SettleRounds < 0
	if v.opts.Room != "" {
		if err := judge(v.opts.Room, last); err != nil {
			return err
		}
	} else {
		seen := map[string]bool{}
		each := func(keys streams.Keys, suffix string) error {
			head := keys.Prefix() + "room:{"
			return scanKeys(ctx, v.r.rdb, globEscape(head)+"*}"+suffix, 0, func(ks []string) error {
				for _, k := range ks {
					room := strings.TrimSuffix(strings.TrimPrefix(k, head), "}"+suffix)
					if seen[room] || !schemas.ValidID(room) {
						continue
					}
					seen[room] = true
					if err := judge(room, last); err != nil {
						return err
					}
				}
				return nil
			})
		}
		// Every entry that reached a room script left an applied marker.
		if err := each(v.s.c.Keys, ":applied"); err != nil {
			return err
		}
		if err := each(v.r.state, ""); err != nil {
			return err
		}
	}
	for round := 1; round <= v.opts.SettleRounds && len(unsettled) > 0; round++ {
		if err := sleep(ctx, v.opts.SettleWait); err != nil {
			return err
		}
		if err := v.catchUp(ctx, unsettled); err != nil {
			return err
		}
		again := unsettled
		unsettled = nil
		for _, room := range again {
			if err := judge(room, round == v.opts.SettleRounds); err != nil {
				return err
			}
		}
	}
	return nil
}

// catchUp applies what the partitions of rooms gained since they were
// read.
func (v *verifier) catchUp(ctx context.Context, rooms []string) error {
	done := map[int]bool{}
	for _, room := range rooms {
		p := v.log.PartitionOf(room)
		if done[p] {
			continue
		}
		done[p] = true
		if err := v.replayPartition(ctx, p, 0, nil); err != nil {
			return err
		}
	}
	return nil
}

func (v *verifier) emit(rep RoomReport) error {
	v.sum.Rooms++
	switch rep.Status {
	case RoomMatches:
		v.sum.Matching++
	case RoomDiffers:
		v.sum.Differing++
	case RoomTrimmed:
		v.sum.Trimmed++
	case RoomUnsettled:
		v.sum.Unsettled++
	case RoomExpiring:
		v.sum.Expiring++
	}
	if v.report == nil {
		return nil
	}
	return v.report(rep)
}

// judge compares one room.
func (v *verifier) judge(ctx context.Context, room string) (RoomReport, error) {
	rep := RoomReport{Room: room}
	p := v.log.PartitionOf(room)
	rb := v.rbs[p]
	if !rb.trusted(room) {
		rep.Status = RoomTrimmed
		rep.Note = fmt.Sprintf("partition %d was trimmed: its log starts at %s, after this room began", p, firstTime(rb.hist.First))
		return rep, nil
	}
	want, err := readRoom(ctx, v.r.rdb, v.s.c.Keys, room)
	if err != nil {
		return rep, err
	}
	got, err := readRoom(ctx, v.r.rdb, v.r.state, room)
	if err != nil {
		return rep, err
	}
	now := v.r.opts.Now()
	if exp := rb.expiresBy(room); !exp.IsZero() {
		off := now.Sub(exp)
		switch {
		case off > -v.opts.ExpirySlack && off < v.opts.ExpirySlack:
			rep.Status, rep.Note = RoomExpiring, "empty since "+streams.ISOTime(exp.Add(-rb.ttl))+", expires about "+streams.ISOTime(exp)
			return rep, nil
		case off >= v.opts.ExpirySlack && !got.exists():
			rep.Status, rep.Note = RoomMatches, "expired at "+streams.ISOTime(exp)+" (empty since "+streams.ISOTime(exp.Add(-rb.ttl))+")"
			return rep, nil
		case off >= v.opts.ExpirySlack:
			rep.Status = RoomDiffers
			rep.Diffs = []Diff{{Key: v.r.state.Room(room), Field: "(expiry)", Log: "expired at " + streams.ISOTime(exp), Live: "still present"}}
			return rep, nil
		}
	}
	if got.applied != "" && want.applied != got.applied {
		// The workers applied another entry last than the replay did: the
		// room changed since the log was read (or the live state waits for
		// pending entries, or the log read is an archive that ends sooner).
		rep.Status = RoomUnsettled
		rep.Note = fmt.Sprintf("the live room is at entry %s, the log replayed up to %s", got.applied, orNone(want.applied))
		return rep, nil
	}
	rep.Diffs = diffRoom(v.r.state, room, want, got)
	rep.Status = RoomMatches
	if want.applied == "" && got.applied == "" && !want.exists() && !got.exists() {
		rep.Note = "no such room: no entry of it in the log, no live state"
	}
	if len(rep.Diffs) > 0 {
		rep.Status = RoomDiffers
		if want.applied == "" {
			rep.Note = "the log holds no entry that reached this room"
		}
	}
	return rep, nil
}

func orNone(id string) string {
	if id == "" {
		return "none of its entries"
	}
	return id
}

func firstTime(id streams.ID) string {
	if id.IsZero() {
		return "(nothing left)"
	}
	return streams.ISOTime(id.Time())
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
