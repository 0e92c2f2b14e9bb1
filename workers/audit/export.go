package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// ExportFormat names the JSON-lines format of Export, in its header line.
const ExportFormat = "roomstream-log"

// ExportVersion is the version of that format.
const ExportVersion = 1

// Header is the first line of an export.
type Header struct {
	Format     string `json:"format"`
	Version    int    `json:"version"`
	Partitions int    `json:"partitions"`
	Prefix     string `json:"prefix"` // key prefix the log was read from
	Room       string `json:"room,omitempty"`
	Since      string `json:"since,omitempty"`
	Until      string `json:"until,omitempty"`
	ExportedAt string `json:"exportedAt"`
	// Incomplete lists the partitions whose earlier history is not in the
	// file (trimmed from Redis, or before Since): rooms older than their
	// first entry cannot be rebuilt from it.
	Incomplete []int `json:"incomplete,omitempty"`
}

// Line is one entry of an export: its partition, its id, every field as
// stored, and the error with which the workers dead-lettered it, if they
// did.
type Line struct {
	Partition  int               `json:"partition"`
	ID         string            `json:"id"`
	Fields     map[string]string `json:"fields"`
	DeadLetter string            `json:"deadLetter,omitempty"`
}

// Trailer is the last line of an export; an import without it was cut
// short.
type Trailer struct {
	End     bool  `json:"end"`
	Entries int64 `json:"entries"`
}

// ExportOptions select what Export writes.
type ExportOptions struct {
	Room string // "" = every room
	Bounds
}

// Export writes the log within opts to w as JSON lines, in log order
// (partitions merged by id): a Header, one Line per entry, a Trailer. It
// returns the number of entries written.
func (r *Replayer) Export(ctx context.Context, opts ExportOptions, w io.Writer) (int64, error) {
	if opts.Room != "" && !schemas.ValidID(opts.Room) {
		return 0, fmt.Errorf("bad room id %q", opts.Room)
	}
	log, err := r.log(ctx)
	if err != nil {
		return 0, err
	}
	parts := log.parts(opts.Room)
	h := Header{Format: ExportFormat, Version: ExportVersion, Partitions: log.Partitions(), Prefix: log.Keys().Prefix(),
		Room: opts.Room, ExportedAt: r.opts.Now().UTC().Format(time.RFC3339Nano)}
	if !opts.Since.IsZero() {
		h.Since = opts.Since.UTC().Format(time.RFC3339Nano)
	}
	if !opts.Until.IsZero() {
		h.Until = opts.Until.UTC().Format(time.RFC3339Nano)
	}
	dead := make([]map[string]string, log.Partitions())
	for _, p := range parts {
		complete, err := r.completeBefore(ctx, log, p, opts.Bounds)
		if err != nil {
			return 0, err
		}
		if !complete {
			h.Incomplete = append(h.Incomplete, p)
		}
		if dead[p], err = log.DeadLettered(ctx, p); err != nil {
			return 0, err
		}
	}
	total, err := log.Len(ctx, parts)
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(h); err != nil {
		return 0, fmt.Errorf("write export: %w", err)
	}
	prog := startProgress(r.opts.Progress, "export", total)
	defer prog.finish()
	size := pageSize(len(parts))
	srcs := make([]source[Entry], len(parts))
	for i, p := range parts {
		c := log.Cursor(p, opts.Bounds, opts.Room, size)
		c.prog = prog
		srcs[i] = c
	}
	var n int64
	line := Line{}
	err = merge(ctx, srcs, func(e Entry) streams.ID { return e.ID }, func(e Entry) error {
		line.Partition, line.ID, line.DeadLetter = e.Partition, e.ID.String(), dead[e.Partition][e.ID.String()]
		line.Fields = make(map[string]string, len(e.Values))
		for k, v := range e.Values {
			s, _ := v.(string)
			line.Fields[k] = s
		}
		n++
		if err := enc.Encode(&line); err != nil {
			return fmt.Errorf("write export: %w", err)
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	if err := enc.Encode(Trailer{End: true, Entries: n}); err != nil {
		return n, fmt.Errorf("write export: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("write export: %w", err)
	}
	return n, nil
}

// completeBefore reports whether partition p's log holds its whole past
// before b.Since: nothing was trimmed, and nothing precedes Since.
func (r *Replayer) completeBefore(ctx context.Context, log *Log, p int, b Bounds) (bool, error) {
	h, err := log.History(ctx, p)
	if err != nil || h.Trimmed {
		return false, err
	}
	if b.Since.IsZero() {
		return true, nil
	}
	before, err := r.rdb.XRevRangeN(ctx, log.Keys().Inbound(p), "("+idAt(b.Since).String(), "-", 1).Result()
	if err != nil {
		return false, fmt.Errorf("read partition %d before %s: %w", p, b.Since.Format(time.RFC3339), err)
	}
	return len(before) == 0, nil
}
