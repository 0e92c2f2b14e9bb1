package workers

import (
	"sync"
	"time"
)

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
	uploads map[string]uploadView
}

// uploadView is what a room's view holds of one upload.
type uploadView struct {
	user string
	// expired is the time of the entry whose write last set the TTL of
	// the upload's progress hash (zero: none in this view).
	expired time.Time
}

// expireEvery is how often, at most, a progress hash's TTL is set again
// while its upload's reports pass under one view: the hash then lives its
// TTL from a report at most this much older than the last one.
const expireEvery = time.Minute

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
	if rv := v.rooms[room]; rv != nil && rv.uploads[upload].user == user {
		return rv.version
	}
	return ""
}

// expireDue tells whether a report of upload at entry time at must set
// its progress hash's TTL again. Only a report that passed under the
// view (version: the view's version it was applied under, "" when none)
// may skip it: then nothing but reports touched the room since the view
// saw the hash written with its TTL.
func (v *views) expireDue(room, upload, version string, at time.Time) bool {
	if v == nil || version == "" {
		return true
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	rv := v.rooms[room]
	if rv == nil || rv.version != version {
		return true
	}
	u := rv.uploads[upload]
	return u.expired.IsZero() || at.Sub(u.expired) >= expireEvery
}

// progressed records a progress report of user on upload applied as
// entry id, the room's last applied entry before it being prev, whose
// write sets the progress hash's TTL when expired is not zero: it extends
// the room's view when prev is its version, and starts it again
// otherwise.
func (v *views) progressed(room, id, prev, user, upload string, expired time.Time) {
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
		rv = &roomView{uploads: make(map[string]uploadView, 4)}
		v.rooms[room] = rv
	}
	rv.version = id
	u := rv.uploads[upload]
	if u.user != user {
		u = uploadView{user: user}
	}
	if !expired.IsZero() {
		u.expired = expired
	}
	rv.uploads[upload] = u
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
