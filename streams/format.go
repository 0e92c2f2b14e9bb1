package streams

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Stream formats number the layout of what processes pass each other
// through Redis Streams: inbound envelopes (field "v") and outbound
// entries (field "v", absent in format 1). A build reads its own format
// and the previous one, so that the processes of two consecutive releases
// can run side by side during a rolling upgrade; it refuses a newer one,
// whose fields it cannot know the meaning of.
//
// What each process writes follows the processes alive: every process
// registers the newest format it reads (a connector in its heartbeat key,
// a worker in its worker key), and writes the newest format every live
// process reads (Client.RefreshFormat). A field that the previous release
// ignores may be added in any format; a change it cannot read takes a new
// format, which is thus written only once no process of the previous
// release is alive.
//
//	format  inbound envelope                         outbound entry
//	1       "at": accept time, ms; "t": the same, µs  no "v"; "at": accept time, µs
//	        (the previous release ignores "t")       (the previous release ignores it)
//	2       "at": accept time, µs                    "v" = 2; "at" as in 1
const (
	// FormatCurrent is the newest stream format this build reads and
	// writes.
	FormatCurrent = 2
	// FormatPrevious is the format of the previous release: this build
	// reads it, and writes it while a process that reads nothing newer
	// is alive (and before it has looked).
	FormatPrevious = FormatCurrent - 1
)

// WriteFormat is the stream format the client writes now.
func (c *Client) WriteFormat() int { return int(c.format.Load()) }

// Formats is what the registrations say about the formats of the live
// processes.
type Formats struct {
	// Write is the newest format every live process reads, within what
	// this build writes (FormatPrevious to FormatCurrent).
	Write int
	// Oldest names a process reading no newer than Write ("connector c1",
	// "worker w2"), when Write is below FormatCurrent; "" otherwise.
	Oldest string
	// TooOld names a live process that reads no format this build
	// writes (more than one release behind); "" when none.
	TooOld string
}

// RefreshFormat reads the registrations of the live connectors and
// workers and from then on writes the newest format all of them read;
// changed tells whether that differs from what the last call found (for
// the caller's log). A
// connector whose heartbeat key is gone is not counted; a worker in the
// workers set without a worker key counts as a release that registered
// no format (or one whose key just expired with it), which errs on the
// side of the format everyone reads.
func (c *Client) RefreshFormat(ctx context.Context) (f Formats, changed bool, err error) {
	var conns, workers *redis.StringSliceCmd
	if _, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		conns = p.SMembers(ctx, c.Keys.Connectors())
		workers = p.ZRange(ctx, c.Keys.Workers(), 0, -1)
		return nil
	}); err != nil {
		return Formats{Write: c.WriteFormat()}, false, err
	}
	names := make([]string, 0, len(conns.Val())+len(workers.Val()))
	gets := make([]*redis.StringCmd, 0, cap(names))
	if _, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range conns.Val() {
			names = append(names, "connector "+id)
			gets = append(gets, p.Get(ctx, c.Keys.Connector(id)))
		}
		for _, id := range workers.Val() {
			names = append(names, "worker "+id)
			gets = append(gets, p.Get(ctx, c.Keys.Worker(id)))
		}
		return nil
	}); err != nil && err != redis.Nil {
		return Formats{Write: c.WriteFormat()}, false, err
	}
	procs := make([]registered, 0, len(gets))
	for i, g := range gets {
		v, err := g.Result()
		switch {
		case err == redis.Nil && strings.HasPrefix(names[i], "connector "):
			continue // a connector that is gone
		case err == redis.Nil:
			v = ""
		case err != nil:
			return Formats{Write: c.WriteFormat()}, false, err
		}
		procs = append(procs, registered{name: names[i], reads: readsFormat(v)})
	}
	f = pickFormat(procs, FormatPrevious, FormatCurrent)
	c.format.Store(int32(f.Write))
	c.formatsMu.Lock()
	changed, c.formats = f != c.formats, f
	c.formatsMu.Unlock()
	return f, changed, nil
}

// FollowFormat is RefreshFormat for a long-running process, which calls
// it with every heartbeat: it logs when the format written changes, or a
// live process reads none this build writes.
func (c *Client) FollowFormat(ctx context.Context, log *slog.Logger) {
	f, changed, err := c.RefreshFormat(ctx)
	switch {
	case err != nil:
		log.Warn("read the stream formats of the live processes", "err", err)
	case changed && f.TooOld != "":
		log.Error(f.String())
	case changed:
		log.Info(f.String())
	}
}

// String says what f means, for a log line.
func (f Formats) String() string {
	s := "writing stream format " + strconv.Itoa(f.Write)
	if f.Oldest != "" {
		s += " (" + f.Oldest + " reads no newer)"
	}
	if f.TooOld != "" {
		s += "; " + f.TooOld + " reads none this build writes: upgrade one release at a time"
	}
	return s
}

// registered is a live process and the newest format it reads.
type registered struct {
	name  string
	reads int
}

// pickFormat returns the newest format from previous to current that
// every process of procs reads.
func pickFormat(procs []registered, previous, current int) Formats {
	f := Formats{Write: current}
	for _, p := range procs {
		if p.reads < previous {
			f.TooOld = p.name
			continue
		}
		if p.reads < f.Write {
			f.Write, f.Oldest = p.reads, p.name
		}
	}
	return f
}

// registration is the value of a connector's heartbeat key: the newest
// format it reads, then the time of the beat. The previous release wrote
// the time alone.
func registration(now time.Time) string {
	return strconv.Itoa(FormatCurrent) + " " + now.UTC().Format(time.RFC3339Nano)
}

// unregistered is the format of the processes that register none: the
// releases before formats were registered read format 1 only.
const unregistered = 1

// readsFormat is the newest format a registration value says its process
// reads: its first word, or unregistered for a value without one.
func readsFormat(v string) int {
	first, _, _ := strings.Cut(v, " ")
	n, err := strconv.Atoi(first)
	if err != nil || n < 1 {
		return unregistered
	}
	return n
}
