package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/roomstream/roomstream/streams"
	"github.com/roomstream/roomstream/workers"
	replay "github.com/roomstream/roomstream/workers/audit"
)

// replayConfig is what replay reads from the environment: the
// deployment's Redis and streams, and the workers' empty-room TTL and room
// limits (replay expires rooms and refuses events as the workers do).
type replayConfig struct {
	streams.Config
	workers.Limits
	EmptyRoomTTL time.Duration `envconfig:"EMPTY_ROOM_TTL" default:"168h" desc:"how long the workers keep an empty room; replay expires rooms the same way"`
}

const replayUsage = `usage: roomstream replay <command> [flags]

  timeline  who joined, left, locked, unlocked and uploaded what, when, and with what outcome
  verify    rebuild room state from the log and compare it with the live state
  export    write the log as JSON lines (an archive beyond Redis retention)
  import    restore an export under a scratch prefix (then use -log-prefix)
  clean     delete a kept scratch copy or an import (-prefix P), or every leftover scratch copy (-all)

Times are RFC 3339 (2026-01-02T15:04:05Z), a date (2026-01-02), "now", or a
duration from now (-1h). Run 'roomstream replay <command> -h' for its flags.`

// Replay runs `roomstream replay ...`.
func Replay(args []string) error {
	ctx, stop := signalContext()
	defer stop()
	// `replay timeline | head` closes the pipe early: get EPIPE instead of
	// dying of SIGPIPE, so that the scratch copy is still deleted.
	signal.Ignore(syscall.SIGPIPE)
	err := runReplay(ctx, args, os.Stdin, os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, syscall.EPIPE):
		return nil
	case err != nil && ctx.Err() != nil:
		return errors.New("interrupted")
	}
	return err
}

func runReplay(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(replayUsage)
	}
	cmds := map[string]func(context.Context, []string, io.Reader, io.Writer, io.Writer) error{
		"timeline": replayTimeline, "verify": replayVerify, "export": replayExport,
		"import": replayImport, "clean": replayClean,
	}
	run, ok := cmds[args[0]]
	if !ok {
		if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			fmt.Fprintln(stderr, replayUsage)
			return nil
		}
		return fmt.Errorf("unknown command %q\n\n%s", args[0], replayUsage)
	}
	return run(ctx, args[1:], stdin, stdout, stderr)
}

// replayFlags are the flags every replay command shares.
type replayFlags struct {
	fs       *flag.FlagSet
	cfg      replayConfig
	room     *string
	since    *string
	until    *string
	logPfx   *string
	scratch  *string
	keep     *bool
	quiet    *bool
	hasRange bool
	hasBuild bool
}

func newReplayFlags(name, synopsis string, rangeFlags, buildFlags bool) *replayFlags {
	f := &replayFlags{hasRange: rangeFlags, hasBuild: buildFlags}
	f.fs = newFlags("replay "+name, "replay "+name+" "+synopsis, &f.cfg)
	f.room = f.fs.String("room", "", "only this room")
	f.logPfx = f.fs.String("log-prefix", "", "key prefix of the log to read (default: ROOMSTREAM_KEY_PREFIX; an import's prefix to read it)")
	f.quiet = f.fs.Bool("quiet", false, "no progress on stderr")
	if rangeFlags {
		since := "only entries the log accepted from this time on"
		if buildFlags {
			since += " (earlier ones are still replayed, so that outcomes are right)"
		}
		f.since = f.fs.String("since", "", since)
		f.until = f.fs.String("until", "", "only entries the log accepted before this time")
	}
	if buildFlags {
		f.scratch = f.fs.String("scratch-prefix", "", "key prefix to rebuild state under (default: a fresh <ROOMSTREAM_KEY_PREFIX>replay:<run>:)")
		f.keep = f.fs.Bool("keep", false, "keep the rebuilt state instead of deleting it")
	}
	return f
}

// setup parses flags and the environment and connects to Redis.
func (f *replayFlags) setup(ctx context.Context, args []string, stderr io.Writer) (*replay.Replayer, replay.Bounds, func(), error) {
	var b replay.Bounds
	f.fs.SetOutput(stderr)
	if err := parse(f.fs, args); err != nil {
		return nil, b, nil, err
	}
	if err := loadEnv(&f.cfg); err != nil {
		return nil, b, nil, err
	}
	if err := f.cfg.Config.Validate(); err != nil {
		return nil, b, nil, err
	}
	if err := f.cfg.Limits.Validate(); err != nil {
		return nil, b, nil, err
	}
	if f.cfg.EmptyRoomTTL < time.Minute {
		return nil, b, nil, fmt.Errorf("ROOMSTREAM_EMPTY_ROOM_TTL must be at least 1m, got %s", f.cfg.EmptyRoomTTL)
	}
	now := time.Now()
	if f.hasRange {
		var err error
		if b, err = parseBounds(*f.since, *f.until, now); err != nil {
			return nil, b, nil, err
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rdb, err := f.cfg.Connect(cctx)
	if err != nil {
		return nil, b, nil, err
	}
	opts := &replay.Options{LogPrefix: *f.logPfx, EmptyRoomTTL: f.cfg.EmptyRoomTTL, Limits: f.cfg.Limits, Progress: stderr}
	if *f.quiet {
		opts.Progress = nil
	}
	if f.hasBuild {
		opts.ScratchPrefix, opts.Keep = *f.scratch, *f.keep
	}
	return replay.New(rdb, f.cfg.Config, opts), b, func() { _ = rdb.Close() }, nil
}

func parseBounds(since, until string, now time.Time) (replay.Bounds, error) {
	var b replay.Bounds
	var err error
	if since != "" {
		if b.Since, err = replay.ParseTime(since, now); err != nil {
			return b, fmt.Errorf("-since: %w", err)
		}
	}
	if until != "" {
		if b.Until, err = replay.ParseTime(until, now); err != nil {
			return b, fmt.Errorf("-until: %w", err)
		}
	}
	if !b.Since.IsZero() && !b.Until.IsZero() && !b.Since.Before(b.Until) {
		return b, fmt.Errorf("-since (%s) must be before -until (%s)", b.Since.Format(time.RFC3339), b.Until.Format(time.RFC3339))
	}
	return b, nil
}

func replayTimeline(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	f := newReplayFlags("timeline", "[-room R] [-since T] [-until T] [-format table|jsonl]", true, true)
	format := f.fs.String("format", "table", "table or jsonl")
	r, b, done, err := f.setup(ctx, args, stderr)
	if err != nil {
		return err
	}
	defer done()
	if *format != "table" && *format != "jsonl" {
		return fmt.Errorf("-format must be table or jsonl, got %q", *format)
	}
	w := bufio.NewWriterSize(stdout, 64<<10)
	defer w.Flush()
	var emit func(replay.Event) error
	trimmed, n := false, 0
	if *format == "jsonl" {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		emit = func(e replay.Event) error { n++; return enc.Encode(e) }
	} else {
		row := "%-24s  %-17s  %-16s  %-21s  %-20s  %-26s  %s\n"
		fmt.Fprintf(w, row, "TIME", "ID", "ROOM", "EVENT", "USER", "OUTCOME", "DETAIL")
		emit = func(e replay.Event) error {
			n++
			trimmed = trimmed || e.HistoryTrimmed
			_, err := fmt.Fprintf(w, row, e.Time, e.ID, e.Room, e.Type, e.Who(), e.OutcomeText(), e.Text())
			return err
		}
	}
	err = r.Timeline(ctx, replay.TimelineOptions{Room: *f.room, Bounds: b}, emit)
	if trimmed {
		fmt.Fprintln(w, "\n? the room is older than the log (its first entries were trimmed by retention): the outcome was recomputed without them and may differ from the original one")
	}
	if err != nil {
		return err
	}
	if !*f.quiet {
		fmt.Fprintf(stderr, "timeline: %d event(s)\n", n)
	}
	return w.Flush()
}

func replayVerify(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	f := newReplayFlags("verify", "[-room R] [-format text|jsonl] [-all]", false, true)
	format := f.fs.String("format", "text", "text or jsonl")
	all := f.fs.Bool("all", false, "also list the rooms that match (always with -room)")
	settle := f.fs.Int("settle", 5, "times to look again at rooms that change while verified (1s apart)")
	r, _, done, err := f.setup(ctx, args, stderr)
	if err != nil {
		return err
	}
	defer done()
	if *format != "text" && *format != "jsonl" {
		return fmt.Errorf("-format must be text or jsonl, got %q", *format)
	}
	if *settle < 0 {
		return fmt.Errorf("-settle must not be negative, got %d", *settle)
	}
	if *settle == 0 {
		*settle = -1
	}
	w := bufio.NewWriterSize(stdout, 64<<10)
	defer w.Flush()
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	report := func(rep replay.RoomReport) error {
		if rep.Status == replay.RoomMatches && !*all && *f.room == "" {
			return nil
		}
		if *format == "jsonl" {
			return enc.Encode(rep)
		}
		writeRoomReport(w, rep)
		return nil
	}
	sum, err := r.Verify(ctx, replay.VerifyOptions{Room: *f.room, SettleRounds: *settle}, report)
	if err != nil {
		return err
	}
	if *format == "jsonl" {
		_ = enc.Encode(map[string]replay.Summary{"summary": sum})
	} else {
		fmt.Fprintf(w, "verify: %d room(s): %d match, %d differ, %d older than the log (not verifiable), %d at another entry than the log (not compared), %d expiring (not compared); %d entries replayed in %s\n",
			sum.Rooms, sum.Matching, sum.Differing, sum.Trimmed, sum.Unsettled, sum.Expiring, sum.Entries, sum.Elapsed.Round(time.Millisecond))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if sum.Differing > 0 {
		return fmt.Errorf("%d room(s) differ from what the log leads to", sum.Differing)
	}
	return nil
}

func writeRoomReport(w io.Writer, rep replay.RoomReport) {
	head := map[string]string{
		replay.RoomMatches: "matches", replay.RoomDiffers: "DIFFERS", replay.RoomTrimmed: "not verifiable",
		replay.RoomUnsettled: "not compared (live state and log at different entries)", replay.RoomExpiring: "not compared (expiring)",
	}[rep.Status]
	if rep.Note != "" {
		head += ": " + rep.Note
	}
	fmt.Fprintf(w, "room %s: %s\n", rep.Room, head)
	for _, d := range rep.Diffs {
		key := d.Key
		if d.Field != "" {
			key += " " + d.Field
		}
		fmt.Fprintf(w, "  %s: log %s, live %s\n", key, quoteValue(d.Log), quoteValue(d.Live))
	}
}

func quoteValue(s string) string {
	switch s {
	case "(absent)", "member":
		return s
	}
	if strings.HasPrefix(s, "expire") || strings.HasPrefix(s, "kept") || strings.HasPrefix(s, "still") {
		return s
	}
	return fmt.Sprintf("%q", s)
}

func replayExport(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	f := newReplayFlags("export", "[-room R] [-since T] [-until T] [-o FILE] > file.jsonl", true, false)
	out := f.fs.String("o", "", "write to this file instead of stdout")
	r, b, done, err := f.setup(ctx, args, stderr)
	if err != nil {
		return err
	}
	defer done()
	w := stdout
	var file *os.File
	if *out != "" {
		if file, err = os.Create(*out); err != nil {
			return err
		}
		defer file.Close()
		w = file
	}
	n, err := r.Export(ctx, replay.ExportOptions{Room: *f.room, Bounds: b}, w)
	if err != nil {
		return err
	}
	if file != nil {
		if err := file.Close(); err != nil {
			return fmt.Errorf("write %s: %w", *out, err)
		}
	}
	if !*f.quiet {
		fmt.Fprintf(stderr, "export: %d entries\n", n)
	}
	return nil
}

func replayImport(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	f := newReplayFlags("import", "-prefix P [-i FILE] < file.jsonl", false, false)
	prefix := f.fs.String("prefix", "", "key prefix to restore the log under (required; must hold no data)")
	in := f.fs.String("i", "", "read this file instead of stdin")
	r, _, done, err := f.setup(ctx, args, stderr)
	if err != nil {
		return err
	}
	defer done()
	if *prefix == "" {
		return errors.New("-prefix is required: the key prefix to restore the log under, e.g. -prefix investigation:")
	}
	if *f.room != "" || *f.logPfx != "" {
		return errors.New("import takes no -room or -log-prefix: it restores the whole file under -prefix")
	}
	src := stdin
	if *in != "" {
		file, err := os.Open(*in)
		if err != nil {
			return err
		}
		defer file.Close()
		src = file
	}
	sum, err := r.Import(ctx, src, *prefix)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "imported %d entries of %d partitions under prefix %q", sum.Entries, sum.Partitions, sum.Prefix)
	if len(sum.Incomplete) > 0 {
		fmt.Fprintf(stdout, " (partitions %v start later than their history: rooms older than their first entry are not verifiable)", sum.Incomplete)
	}
	fmt.Fprintf(stdout, "\nread it with: roomstream replay timeline -log-prefix %s ...; delete it with: roomstream replay clean -prefix %s\n", sum.Prefix, sum.Prefix)
	return nil
}

func replayClean(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	f := newReplayFlags("clean", "-prefix P | -all", false, false)
	prefix := f.fs.String("prefix", "", "delete this kept scratch copy or import")
	all := f.fs.Bool("all", false, "delete every scratch copy replay left under ROOMSTREAM_KEY_PREFIX")
	r, _, done, err := f.setup(ctx, args, stderr)
	if err != nil {
		return err
	}
	defer done()
	var n int64
	switch {
	case *all && *prefix == "":
		n, err = r.CleanAll(ctx)
	case !*all && *prefix != "":
		n, err = r.Clean(ctx, *prefix)
	default:
		return errors.New("clean needs -prefix P or -all")
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "deleted %d key(s)\n", n)
	return nil
}
