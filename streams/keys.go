package streams

import "strconv"

// Keys names every Redis key roomstream uses; no other file builds a key.
// The names are the design document's, with the braces kept literally: they
// are Redis Cluster hash tags, so all keys of one room (one socket, one
// user, one partition, one connector) share a slot and one Lua script can
// touch them together.
//
//	key                        type    TTL
//	session:{sessionId}        hash    24 h, refreshed on connect
//	socket:{socketId}          hash    24 h, refreshed on connect
//	socket:{socketId}:rooms    set     as its socket
//	user:{userId}:sockets      set     24 h, refreshed on connect
//	user:{userId}:rooms        set     24 h, refreshed on join
//	user:{userId}:joining      zset    joins admitted, not applied yet (room -> until, ms): 1 min
//	user:{userId}:created      string  rooms the user's joins created this minute (room create rate); 1 min
//	user:{userId}:revoked      string  ms before which the user's tokens are refused (HTTP API); API revoke TTL
//	room:{roomId}              hash    none while it has members; 7 days once empty
//	room:{roomId}:users        set     as the room
//	room:{roomId}:sockets      hash    as the room (socketId -> connector, user, name)
//	room:{roomId}:uploads      hash    as the room (uploadId -> upload JSON)
//	room:{roomId}:files        hash    as the room (fileId -> file JSON)
//	room:{roomId}:conns        hash    as the room (connectorId -> number of the room's sockets on it)
//	room:{roomId}:applied      hash    26 h, refreshed hourly (last applied entry, fence, socket event numbers: 10 min, API publishes 25 h)
//	upload:{uploadId}:progress hash    24 h, deleted on completion
//	resume:{pid}               string  temporary token: 15 min, refreshed while connected
//	api:idem:{key}             string  a publish with that Idempotency-Key: pending or done, its generation (seq), entry id; 24 h
//	in:{p}                     stream  trimmed by retention and length
//	in:{p}:lease, in:{p}:epoch string  lease TTL / none
//	in:{p}:dead                stream  dead letters, trimmed by retention
//	in:{p}:requeued            hash    dead letter id -> id of its requeued copy; retention
//	feed:{p}                   stream  applied events (EVENTS_FEED): trimmed by EVENTS_FEED_RETENTION and _MAXLEN
//	feed:{p}:fed:<roomId>      string  the room's last inbound entry whose events are in the feed; EVENTS_FEED_RETENTION
//	feed:{p}:lease, :epoch     string  lease of the hooks process delivering the partition's feed: LEASE_TTL / none
//	feed:{p}:dead              stream  webhook dead letters, trimmed by INBOUND_RETENTION
//	feed:{p}:redo              stream  webhook dead letters requeued, delivered again; INBOUND_RETENTION
//	feed:{p}:requeued          hash    webhook dead letter id -> id of its requeued copy; INBOUND_RETENTION
//	hooks                      zset    live hooks processes (score = last heartbeat)
//	out:{connectorId}          stream  trimmed to the recovery window; deleted after its connector is gone
//	connector:{connectorId}    string  heartbeat: the newest stream format it reads, and when it beat; connector timeout
//	connector:{connectorId}:sockets set sockets hosted by that connector
//	connector:{connectorId}:addr string  where other connectors reach it (polling forwards), connector timeout
//	connectors                 set     registered connectors
//	connectors:gone            zset    streams to delete (score = when)
//	workers                    zset    live workers (score = last heartbeat)
//	worker:{workerId}          string  registration beside workers: the newest stream format it reads, and when it beat; lease TTL
//	locks:orphaned             zset    locks whose holder left (score = release time)
//	{janitor}:lease, :epoch    string  lease of the janitor / none (one slot)
//	meta                       hash    deployment facts (partition count)
//	replay:<run>:<any key>     any     scratch copy of the keys above, made by
//	                                   `roomstream replay`; deleted after use
type Keys struct{ prefix string }

// NewKeys returns the key namer for a deployment prefix.
func NewKeys(prefix string) Keys { return Keys{prefix: prefix} }

// Prefix returns the deployment prefix.
func (k Keys) Prefix() string { return k.prefix }

func (k Keys) tagged(kind, id, suffix string) string {
	return k.prefix + kind + ":{" + id + "}" + suffix
}

func (k Keys) Session(id string) string        { return k.tagged("session", id, "") }
func (k Keys) Socket(id string) string         { return k.tagged("socket", id, "") }
func (k Keys) SocketRooms(id string) string    { return k.tagged("socket", id, ":rooms") }
func (k Keys) UserSockets(id string) string    { return k.tagged("user", id, ":sockets") }
func (k Keys) UserRooms(id string) string      { return k.tagged("user", id, ":rooms") }
func (k Keys) UserJoining(id string) string    { return k.tagged("user", id, ":joining") }
func (k Keys) UserCreated(id string) string    { return k.tagged("user", id, ":created") }
func (k Keys) Room(id string) string           { return k.tagged("room", id, "") }
func (k Keys) RoomUsers(id string) string      { return k.tagged("room", id, ":users") }
func (k Keys) RoomSockets(id string) string    { return k.tagged("room", id, ":sockets") }
func (k Keys) RoomUploads(id string) string    { return k.tagged("room", id, ":uploads") }
func (k Keys) RoomFiles(id string) string      { return k.tagged("room", id, ":files") }
func (k Keys) RoomApplied(id string) string    { return k.tagged("room", id, ":applied") }
func (k Keys) RoomConns(id string) string      { return k.tagged("room", id, ":conns") }
func (k Keys) UploadProgress(id string) string { return k.tagged("upload", id, ":progress") }
func (k Keys) Resume(pid string) string        { return k.tagged("resume", pid, "") }
func (k Keys) UserRevoked(id string) string    { return k.tagged("user", id, ":revoked") }

// Idempotency names the record of an HTTP API publish made with an
// Idempotency-Key (key is a digest of the room and the caller's key).
func (k Keys) Idempotency(key string) string { return k.prefix + "api:idem:{" + key + "}" }

// RoomKeys returns the keys of one room in the order the room scripts take
// them as KEYS[1..7].
func (k Keys) RoomKeys(id string) []string {
	return []string{k.Room(id), k.RoomUsers(id), k.RoomSockets(id), k.RoomUploads(id), k.RoomFiles(id), k.RoomApplied(id), k.RoomConns(id)}
}

func (k Keys) Inbound(p int) string     { return k.tagged("in", strconv.Itoa(p), "") }
func (k Keys) Lease(p int) string       { return k.tagged("in", strconv.Itoa(p), ":lease") }
func (k Keys) Epoch(p int) string       { return k.tagged("in", strconv.Itoa(p), ":epoch") }
func (k Keys) DeadLetters(p int) string { return k.tagged("in", strconv.Itoa(p), ":dead") }
func (k Keys) Requeued(p int) string    { return k.tagged("in", strconv.Itoa(p), ":requeued") }

// The feed keys share the {p} hash tag of the partition's inbound
// stream: one partition's feed, its dedup markers, its hooks lease and its
// webhook dead letters are in one slot.
func (k Keys) Feed(p int) string { return k.tagged("feed", strconv.Itoa(p), "") }
func (k Keys) FeedFed(p int, room string) string {
	return k.tagged("feed", strconv.Itoa(p), ":fed:"+room)
}
func (k Keys) HooksLease(p int) string      { return k.tagged("feed", strconv.Itoa(p), ":lease") }
func (k Keys) HooksEpoch(p int) string      { return k.tagged("feed", strconv.Itoa(p), ":epoch") }
func (k Keys) WebhookDead(p int) string     { return k.tagged("feed", strconv.Itoa(p), ":dead") }
func (k Keys) WebhookRedo(p int) string     { return k.tagged("feed", strconv.Itoa(p), ":redo") }
func (k Keys) WebhookRequeued(p int) string { return k.tagged("feed", strconv.Itoa(p), ":requeued") }
func (k Keys) Hooks() string                { return k.prefix + "hooks" }

func (k Keys) Outbound(connector string) string  { return k.tagged("out", connector, "") }
func (k Keys) Connector(connector string) string { return k.tagged("connector", connector, "") }
func (k Keys) ConnectorSockets(connector string) string {
	return k.tagged("connector", connector, ":sockets")
}
func (k Keys) ConnectorAddr(connector string) string {
	return k.tagged("connector", connector, ":addr")
}

// Worker names a worker's registration beside the workers set.
func (k Keys) Worker(worker string) string { return k.tagged("worker", worker, "") }

func (k Keys) Connectors() string     { return k.prefix + "connectors" }
func (k Keys) GoneConnectors() string { return k.prefix + "connectors:gone" }
func (k Keys) Workers() string        { return k.prefix + "workers" }
func (k Keys) OrphanLocks() string    { return k.prefix + "locks:orphaned" }
func (k Keys) Janitor() string        { return k.prefix + "{janitor}:lease" }
func (k Keys) JanitorEpoch() string   { return k.prefix + "{janitor}:epoch" }
func (k Keys) Meta() string           { return k.prefix + "meta" }

// Scratch returns the key prefix under which `roomstream replay` rebuilds
// state for one run: keys named by NewKeys(k.Scratch(run)) never collide
// with the deployment's own, and stay inside its prefix (so ACLs on the
// prefix still apply).
func (k Keys) Scratch(run string) string { return k.prefix + "replay:" + run + ":" }

// Group is the consumer group of the workers on every inbound partition.
const Group = "workers"

// HooksGroup is the consumer group of the hooks processes on every feed
// stream (and its stream of requeued webhook dead letters).
const HooksGroup = "hooks"
