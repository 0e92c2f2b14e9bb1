// Package streams is the Redis plumbing that connectors and workers
// share, and the formats they share data in: the key names
// (keys.go, the only place keys are spelled), the stream formats and how
// a process picks the one every live process reads (format.go), the
// inbound envelope, the outbound entry, the room state format (roomstate.go: the separators of
// room values and the one decoder of a room snapshot), the room
// partitioner, the producer that appends to the inbound partitions, the consumer-group reader (with claiming of
// stale entries), partition and janitor leases, trimming, dead letters,
// the applied-events feed's format and its deduplicated append (feed.go),
// the registries of live connectors and workers (with the stream format
// each reads), token revocations, the
// keys of a socket's lifetime that it keeps for the connector (open,
// hold, claim on recovery, close), a user's bounds taken in one step
// (userlimits.go: sockets, rooms, rooms created), outbound reads and the
// partitions' backlog, the Redis client itself, and the histogram of an
// event's latency per hop that workers and connectors both observe
// (latency.go).
//
// It decides nothing about rooms (the room rules are package workers'
// scripts, which change room state) and speaks no client protocol
// (package connector holds the connections and says when a socket opens,
// moves or closes): it stores and reads what those two decide.
package streams
