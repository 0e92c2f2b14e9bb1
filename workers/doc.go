// Package workers applies room, lock and upload logic. Workers form one
// consumer group over the inbound partition streams; each partition has a
// single owner at a time (a fenced lease), which applies its entries in
// stream order through idempotent Lua scripts and appends the resulting
// events to the outbound streams of the connectors that host the target
// sockets. Workers never talk to clients directly.
//
// Files:
//
//	worker.go     Worker: New, Run, shutdown, the partitions it owns
//	config.go     Config and its validation
//	balancer.go   lease renewal and the fair share of partitions per worker
//	shared.go     the shared read: every owned partition read, applied and acknowledged together
//	shared_round.go  one round trip of it: writes, scripts of a wave, the next read
//	partition.go  one partition alone: claims, retries, dead letters, durable mode
//	janitor.go    the deployment-wide chores of the janitor lease's holder
//	reaper.go     a dead connector's sockets leave their rooms
//	apply.go      Applier: one entry planned as a room script call, Apply
//	batch.go      ApplyBatch: entries applied in waves, deferred Writes, commit
//	effects.go    what one entry produces: outbound messages per connector
//	feed.go       the applied-events feed: the events rooms heard, written with the entry's other writes
//	reply.go      the room scripts' replies, field by field
//	room.go       join, leave and move
//	lock.go       lock and unlock
//	upload.go     file upload started, progress, completed, failed
//	views.go      what progress reports of a room passed, so the next ones skip the checks
//	roomkeys.go   the keys of rooms applied lately, built once per room
//	server.go     commands of the server API: publish, remove a member
//	limits.go     Limits of a room (members, uploads, files, snapshot)
//	expiry.go     the room keys that expire once a room is empty
//	scripts.go    the Lua room scripts (scripts/*.lua), as functions or scripts
//	metrics.go    the workers' Prometheus metrics
//
// Subpackage audit reads the inbound log back (`roomstream replay`).
package workers
