package streams

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ID is a Redis stream entry id: milliseconds and a sequence number.
type ID struct{ Ms, Seq uint64 }

// ParseID parses "ms-seq" (or "ms", meaning seq 0).
func ParseID(s string) (ID, error) {
	ms, seq, found := strings.Cut(s, "-")
	var id ID
	var err error
	if id.Ms, err = strconv.ParseUint(ms, 10, 64); err != nil {
		return ID{}, fmt.Errorf("streams: bad stream id %q", s)
	}
	if found {
		if id.Seq, err = strconv.ParseUint(seq, 10, 64); err != nil {
			return ID{}, fmt.Errorf("streams: bad stream id %q", s)
		}
	}
	return id, nil
}

// MustID is ParseID for ids Redis produced; a malformed one yields zero.
func MustID(s string) ID { id, _ := ParseID(s); return id }

// IDAt returns the smallest id at time t.
func IDAt(t time.Time) ID { return ID{Ms: uint64(t.UnixMilli())} }

func (a ID) String() string {
	return strconv.FormatUint(a.Ms, 10) + "-" + strconv.FormatUint(a.Seq, 10)
}

// Less reports whether a sorts before b.
func (a ID) Less(b ID) bool { return a.Ms < b.Ms || a.Ms == b.Ms && a.Seq < b.Seq }

// Next returns the id right after a.
func (a ID) Next() ID { return ID{a.Ms, a.Seq + 1} }

// IsZero reports whether a is 0-0.
func (a ID) IsZero() bool { return a.Ms == 0 && a.Seq == 0 }

// Time returns the time encoded in the id.
func (a ID) Time() time.Time { return time.UnixMilli(int64(a.Ms)) }
