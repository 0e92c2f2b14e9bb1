package workers

import (
	"fmt"

	"github.com/roomstream/roomstream/streams"
)

// Limits bound what one room holds and what a join snapshot carries, so
// that no client can grow a room's Redis state, or the snapshots kept in
// the outbound streams for the recovery window, without end. They are
// checked where a record is added (join, upload start, completion, a
// first progress report) with one HLEN or SCARD each, never by reading
// the room. The audit package (workers/audit) applies the log with the
// same rules, so it must be given the limits the workers had (the same
// variables).
type Limits struct {
	RoomMaxMembers int `envconfig:"ROOM_MAX_MEMBERS" default:"500" desc:"users one room may hold; a join past it is refused with room_full"`
	RoomMaxUploads int `envconfig:"ROOM_MAX_UPLOADS" default:"50" desc:"uploads in progress in one room; one more is refused with too_many_uploads (uploads of users who left are dropped first)"`
	RoomMaxFiles   int `envconfig:"ROOM_MAX_FILES" default:"1000" desc:"files one room may hold; an upload of one more is refused with too_many_files"`
	SnapshotLimit  int `envconfig:"SNAPSHOT_LIMIT" default:"100" desc:"entries per list (members, activeUploads, files) in a join snapshot; counts say how many there are"`
}

// DefaultLimits returns the limits used when none are configured: the
// defaults of their variables' tags.
func DefaultLimits() Limits { return defaultLimits }

var defaultLimits = func() Limits {
	var l Limits
	streams.Defaults(&l)
	return l
}()

// orDefaults returns l with each unset (zero) limit at its default.
func (l Limits) orDefaults() Limits {
	d := DefaultLimits()
	if l.RoomMaxMembers == 0 {
		l.RoomMaxMembers = d.RoomMaxMembers
	}
	if l.RoomMaxUploads == 0 {
		l.RoomMaxUploads = d.RoomMaxUploads
	}
	if l.RoomMaxFiles == 0 {
		l.RoomMaxFiles = d.RoomMaxFiles
	}
	if l.SnapshotLimit == 0 {
		l.SnapshotLimit = d.SnapshotLimit
	}
	return l
}

// Validate checks the limits and names the variable at fault. Zero means
// the default (a Config built in code without limits).
func (l Limits) Validate() error {
	for _, v := range []struct {
		name string
		n    int
	}{
		{"ROOMSTREAM_ROOM_MAX_MEMBERS", l.RoomMaxMembers},
		{"ROOMSTREAM_ROOM_MAX_UPLOADS", l.RoomMaxUploads},
		{"ROOMSTREAM_ROOM_MAX_FILES", l.RoomMaxFiles},
		{"ROOMSTREAM_SNAPSHOT_LIMIT", l.SnapshotLimit},
	} {
		if v.n < 0 || v.n > maxLimit {
			return fmt.Errorf("%s must be between 1 and %d (0: the default), got %d", v.name, maxLimit, v.n)
		}
	}
	return nil
}

// maxLimit bounds every limit: a room's lists are read whole at a join.
const maxLimit = 100_000
