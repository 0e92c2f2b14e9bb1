package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/streams"
)

// ImportSummary says what Import restored.
type ImportSummary struct {
	Prefix     string
	Entries    int64
	Partitions int
	Incomplete []int // partitions marked as trimmed (their earlier history is not in the file)
}

// maxLine bounds one line of an import (an entry with its payload).
const maxLine = 16 << 20

// importBatch is how many entries go to Redis in one pipeline.
const importBatch = 500

// Import restores an export into the empty prefix, with the entries'
// original ids and partitions, so that Timeline, Verify and Export run on
// it (Options.LogPrefix). Partitions whose earlier history is not in the
// file are marked trimmed, as they were in the source. On any error the
// prefix is deleted again: an import is whole or absent.
func (r *Replayer) Import(ctx context.Context, src io.Reader, prefix string) (ImportSummary, error) {
	sum := ImportSummary{Prefix: prefix}
	if err := checkPrefix(prefix, r.cfg.KeyPrefix); err != nil {
		return sum, err
	}
	in := &lineReader{r: bufio.NewReaderSize(src, 1<<20)}
	first, err := in.next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return sum, errors.New("import: the input is empty")
		}
		return sum, err
	}
	var h Header
	if err := json.Unmarshal(first, &h); err != nil || h.Format != ExportFormat {
		return sum, fmt.Errorf("import: line 1 is not the header of a roomstream export (%q expected in \"format\")", ExportFormat)
	}
	if h.Version != ExportVersion {
		return sum, fmt.Errorf("import: export version %d, this build reads version %d", h.Version, ExportVersion)
	}
	if h.Partitions < 1 || h.Partitions > 4096 {
		return sum, fmt.Errorf("import: header: partitions must be between 1 and 4096, got %d", h.Partitions)
	}
	sum.Partitions = h.Partitions
	if err := claimPrefix(ctx, r.rdb, prefix, "import", h.Partitions, true, r.opts.Now()); err != nil {
		return sum, err
	}
	im := &importer{r: r, keys: streams.NewKeys(prefix), h: h, last: map[int]streams.ID{}}
	prog := startProgress(r.opts.Progress, "import", 0)
	err = im.run(ctx, in, prog)
	prog.finish()
	sum.Entries = im.n
	if err == nil {
		sum.Incomplete, err = im.markIncomplete(ctx)
	}
	if err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if _, derr := dropPrefix(cctx, r.rdb, prefix); derr != nil {
			return sum, fmt.Errorf("%w (and deleting the partial import failed: %v)", err, derr)
		}
		return sum, fmt.Errorf("%w (nothing was imported)", err)
	}
	return sum, nil
}

type importer struct {
	r     *Replayer
	keys  streams.Keys
	h     Header
	last  map[int]streams.ID // last id written per partition
	n     int64
	batch []pending
}

type pending struct {
	line int
	args *redis.XAddArgs
	dead *redis.XAddArgs
}

// importLine is any line of an export.
type importLine struct {
	Partition  *int              `json:"partition"`
	ID         string            `json:"id"`
	Fields     map[string]string `json:"fields"`
	DeadLetter string            `json:"deadLetter"`
	End        bool              `json:"end"`
	Entries    int64             `json:"entries"`
}

func (im *importer) run(ctx context.Context, in *lineReader, prog *progress) error {
	ended := false
	for {
		raw, err := in.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if ended {
			return fmt.Errorf("import: line %d: data after the end line", in.n)
		}
		var l importLine
		if err := json.Unmarshal(raw, &l); err != nil {
			return fmt.Errorf("import: line %d: %v", in.n, err)
		}
		if l.End {
			ended = true
			if err := im.flush(ctx); err != nil {
				return err
			}
			if l.Entries != im.n {
				return fmt.Errorf("import: the end line counts %d entries, the file holds %d", l.Entries, im.n)
			}
			continue
		}
		if err := im.add(ctx, in.n, l); err != nil {
			return err
		}
		prog.add(1)
	}
	if !ended {
		if err := im.flush(ctx); err != nil {
			return err
		}
		return fmt.Errorf("import: the file ends after %d entries without its end line: the export was cut short", im.n)
	}
	return nil
}

func (im *importer) add(ctx context.Context, n int, l importLine) error {
	if l.Partition == nil || *l.Partition < 0 || *l.Partition >= im.h.Partitions {
		return fmt.Errorf("import: line %d: partition missing or not in 0..%d", n, im.h.Partitions-1)
	}
	p := *l.Partition
	id, err := streams.ParseID(l.ID)
	if err != nil || id.IsZero() {
		return fmt.Errorf("import: line %d: bad entry id %q", n, l.ID)
	}
	if prev, ok := im.last[p]; ok && !prev.Less(id) {
		return fmt.Errorf("import: line %d: entry %s does not follow %s in partition %d (the file is not in log order)", n, l.ID, prev, p)
	}
	if len(l.Fields) == 0 {
		return fmt.Errorf("import: line %d: entry %s has no fields", n, l.ID)
	}
	if room := l.Fields["room"]; room != "" {
		if want := streams.Partition(room, im.h.Partitions); want != p {
			return fmt.Errorf("import: line %d: entry %s of room %q is in partition %d, but that room belongs to partition %d of %d", n, l.ID, room, p, want, im.h.Partitions)
		}
	}
	im.last[p] = id
	pe := pending{line: n, args: &redis.XAddArgs{Stream: im.keys.Inbound(p), ID: id.String(), Values: ordered(l.Fields)}}
	if l.DeadLetter != "" {
		vals := ordered(l.Fields)
		vals = append(vals, "dl_source", id.String(), "dl_error", l.DeadLetter, "dl_attempts", "0",
			"dl_failed_at", strconv.FormatInt(im.r.opts.Now().UnixMilli(), 10))
		pe.dead = &redis.XAddArgs{Stream: im.keys.DeadLetters(p), Values: vals}
	}
	im.batch = append(im.batch, pe)
	im.n++
	if len(im.batch) >= importBatch {
		return im.flush(ctx)
	}
	return nil
}

func (im *importer) flush(ctx context.Context) error {
	if len(im.batch) == 0 {
		return nil
	}
	cmds := make([]*redis.StringCmd, 0, len(im.batch))
	lines := make([]int, 0, len(im.batch))
	_, err := im.r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, pe := range im.batch {
			cmds = append(cmds, p.XAdd(ctx, pe.args))
			lines = append(lines, pe.line)
			if pe.dead != nil {
				cmds = append(cmds, p.XAdd(ctx, pe.dead))
				lines = append(lines, pe.line)
			}
		}
		return nil
	})
	im.batch = im.batch[:0]
	for i, c := range cmds {
		if c.Err() != nil {
			return fmt.Errorf("import: line %d: %w", lines[i], c.Err())
		}
	}
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	return nil
}

// markIncomplete marks the partitions the header lists as incomplete as
// trimmed, the way Redis shows a trimmed stream (more entries added than
// held), so that replay treats their old rooms as it would live.
func (im *importer) markIncomplete(ctx context.Context) ([]int, error) {
	rdb := im.r.rdb
	var out []int
	for _, p := range im.h.Incomplete {
		if p < 0 || p >= im.h.Partitions {
			return out, fmt.Errorf("import: header: incomplete partition %d is not in 0..%d", p, im.h.Partitions-1)
		}
		key := im.keys.Inbound(p)
		var err error
		if last, ok := im.last[p]; ok {
			var n int64
			if n, err = rdb.XLen(ctx, key).Result(); err == nil {
				err = rdb.Do(ctx, "XSETID", key, last.String(), "ENTRIESADDED", n+1).Err()
			}
		} else {
			// No entry of this partition in the file: an empty stream that
			// once held one says the same.
			if err = rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, ID: "0-1", Values: []any{"trimmed", "1"}}).Err(); err == nil {
				err = rdb.XDel(ctx, key, "0-1").Err()
			}
		}
		if err != nil {
			return out, fmt.Errorf("import: mark partition %d as trimmed: %w", p, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// envelopeOrder is the order in which streams.Envelope.Values writes the
// fields of an entry; imported entries read the same in redis-cli.
var envelopeOrder = []string{"v", "type", "room", "user", "name", "session", "socket", "connector", "ack", "data", "reason", "target", "at"}

func ordered(fields map[string]string) []any {
	out := make([]any, 0, 2*len(fields))
	done := make(map[string]bool, len(envelopeOrder))
	for _, k := range envelopeOrder {
		if v, ok := fields[k]; ok {
			out = append(out, k, v)
			done[k] = true
		}
	}
	var rest []string
	for k := range fields {
		if !done[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		out = append(out, k, fields[k])
	}
	return out
}

// lineReader reads non-empty lines of at most maxLine bytes.
type lineReader struct {
	r   *bufio.Reader
	n   int // number of the line last returned
	buf []byte
}

func (l *lineReader) next() ([]byte, error) {
	for {
		l.buf = l.buf[:0]
		for {
			chunk, err := l.r.ReadSlice('\n')
			l.buf = append(l.buf, chunk...)
			if len(l.buf) > maxLine {
				return nil, fmt.Errorf("import: line %d is longer than %d bytes", l.n+1, maxLine)
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("import: read line %d: %w", l.n+1, err)
			}
			if len(l.buf) == 0 && err != nil {
				return nil, io.EOF
			}
			break
		}
		l.n++
		if line := bytes.TrimSpace(l.buf); len(line) > 0 {
			return line, nil
		}
	}
}
