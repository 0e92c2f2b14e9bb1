package workers

import "sync"

// views is what the applier knows of rooms' progress reports, so that
// the frequent event can skip the checks its room already passed: a
// room's view holds the uploads each user reported progress on
// successfully, and the room's last applied entry as of which that
// holds (version).
//
// Only progress reports extend a view, and a report changes no
// membership, lock or other user's upload. A view is thus true as long
// as the room applied nothing but progress since its version: the room
// script checks that (the room's last applied entry must be the
// version), so a view that another worker, an API command or any other
// event made stale is never trusted -- the script checks everything then,
// and the view starts again. Events of other kinds drop the room's view.
//
// A nil *views keeps no view: every report is checked in full.
type views struct {
	mu    sync.Mutex
	rooms map[string]*roomView
}

type roomView struct {
	version string
	uploads map[string]string // upload id -> its user
}

// maxViews bounds the rooms views keep; past it they start afresh.
const maxViews = 100_000

// version returns the version under which a progress report of user on
// upload may skip the room's checks, "" when it may not.
func (v *views) version(room, user, upload string) string {
	if v == nil {
		return ""
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if rv := v.rooms[room]; rv != nil && rv.uploads[upload] == user {
		return rv.version
	}
	return ""
}

// progressed records a progress report of user on upload applied as
// entry id, the room's last applied entry before it being prev: it
// extends the room's view when prev is its version, and starts it again
// otherwise.
func (v *views) progressed(room, id, prev, user, upload string) {
	if v == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	rv := v.rooms[room]
	if rv == nil || rv.version != prev || prev == "" {
		if v.rooms == nil || len(v.rooms) >= maxViews {
			v.rooms = make(map[string]*roomView)
		}
		rv = &roomView{uploads: make(map[string]string, 4)}
		v.rooms[room] = rv
	}
	rv.version = id
	rv.uploads[upload] = user
}

// drop forgets a room's view (an event that is not a successful progress
// report was applied to it, or might have been).
func (v *views) drop(room string) {
	if v == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.rooms, room)
}
