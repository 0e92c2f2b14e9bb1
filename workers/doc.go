// Package workers applies room, lock and upload logic. Workers form one
// consumer group over the inbound partition streams; each partition has a
// single owner at a time (a fenced lease), which applies its entries in
// stream order through idempotent Lua scripts and appends the resulting
// events to the outbound streams of the connectors that host the target
// sockets. Workers never talk to clients directly.
package workers
