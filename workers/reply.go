package workers

import (
	"strings"

	"github.com/roomstream/roomstream/streams"
)

// Room scripts reply with a flat array of strings: a status ('ok', 'noop'
// or a refusal code), then the fields each script's header lists. Lists
// inside a field are joined by the separators prelude.lua names (their Go
// names are in streams/roomstate.go).

// reply is a room script's reply. Its readers below give each script's
// fields names; a reply shorter than its script's 'ok' form is refused
// (see applied), so they read past the end as "".
type reply []string

func (r reply) status() string { return r.at(0) }

func (r reply) at(i int) string {
	if i < len(r) {
		return r[i]
	}
	return ""
}

func (r reply) flag(i int) bool { return r.at(i) == "1" }

// applied tells whether the script applied env with a complete 'ok'
// reply of n elements, and marks the outcome ok; otherwise the sender
// hears the refusal.
func (e *effects) applied(env *streams.Envelope, r reply, n int) bool {
	if r.status() != "ok" || len(r) < n {
		e.refuse(env, refusal(env, r))
		return false
	}
	e.outcome.Status = "ok"
	return true
}

// joinReply is join.lua's 'ok' reply.
type joinReply struct {
	again   bool   // the socket is in the room on this connector already
	first   bool   // the user was not in the room: user-joined goes out
	conns   string // connectors hosting the room, this one included
	room    string // the room's hashes, flattened, for the snapshot
	sockets string
	uploads string
	files   string
	added   bool   // new on this connector: it adds the socket to its members
	from    string // the connector the socket was on before, when another
}

const joinFields = 9

func (r reply) join() joinReply {
	return joinReply{again: r.at(9) == "again", first: r.flag(1), conns: r.at(2), room: r.at(3), sockets: r.at(4),
		uploads: r.at(5), files: r.at(6), added: r.flag(7), from: r.at(8)}
}

// leaveReply is leave.lua's 'ok' reply.
type leaveReply struct {
	userLeft     bool // the user has no socket left in the room
	userID       string
	userName     string
	conns        string // connectors still hosting the room
	lockOrphaned bool   // the user held the lock
	conn         string // the connector the socket was on
}

const leaveFields = 8

func (r reply) leave() leaveReply {
	return leaveReply{userLeft: r.flag(1), userID: r.at(2), userName: r.at(3), conns: r.at(4), lockOrphaned: r.flag(5), conn: r.at(7)}
}

// lockReply is lock.lua's 'ok' reply.
type lockReply struct {
	changed  bool // false when the user held the lock already
	conns    string
	lockedAt string
	reason   string
}

const lockFields = 5

func (r reply) lock() lockReply {
	return lockReply{changed: r.flag(1), conns: r.at(2), lockedAt: r.at(3), reason: r.at(4)}
}

// unlock.lua replies 'ok', lockedBy, lockedByName, conns.
const unlockFields = 4

func (r reply) unlockConns() string { return r.at(3) }

// movedFrom is move.lua's 'ok' field: the connector the socket was on.
func (r reply) movedFrom() string { return r.at(1) }

// publish.lua and upload.lua reply 'ok', conns (upload.lua then the
// upload records it dropped to make room for a new one).
const (
	publishFields = 2
	uploadFields  = 2
)

func (r reply) conns() string { return r.at(1) }

// evictReply is evict.lua's 'ok' reply.
type evictReply struct {
	userName     string
	conns        string // connectors that hosted the room's sockets before
	lockOrphaned bool
	removed      [][2]string // socket id and connector of each socket removed
}

const evictFields = 6

func (r reply) evict() evictReply {
	v := evictReply{userName: r.at(1), conns: r.at(2), lockOrphaned: r.flag(3)}
	for _, s := range split(r.at(5), streams.ListSep) {
		sid, conn, _ := strings.Cut(s, streams.FieldSep)
		v.removed = append(v.removed, [2]string{sid, conn})
	}
	return v
}

func (r reply) dropped() []string {
	if len(r) <= 2 {
		return nil
	}
	return r[2:]
}

// split splits a list field; "" is the empty list.
func split(s, sep string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, sep)
}

// hasConn tells whether the connector list conns holds c.
func hasConn(conns, c string) bool {
	for conns != "" {
		var x string
		x, conns, _ = strings.Cut(conns, streams.ListSep)
		if x == c {
			return true
		}
	}
	return false
}

func joinConns(conns, c string) string {
	if conns == "" {
		return c
	}
	return conns + streams.ListSep + c
}
