// Package bench is roomstream's load generator and benchmark scenarios,
// run as `roombench <scenario>` (cmd/roombench; `go tool task bench`
// builds it into bin/ beside the server).
//
// The generator behaves like real users: each connection is a Socket.IO v4
// client over WebSocket that authenticates with a JWT, joins a room
// and emits file-upload-progress events carrying a sequence number (seq)
// and a send time (sentAt, Unix microseconds), extension fields the
// servers relay untouched. Every member checks what it receives from the
// others: end-to-end latency (send on one client to receipt on each other
// member), lost, duplicated and reordered deliveries (from the sequence
// numbers, per sender). It reads CPU time and RSS of the server processes
// from /proc.
//
// The generator must cost far less than the servers it loads: its
// WebSocket client is its own (websocket.go), and once a user has joined,
// its socket is read by a reactor (reactor.go), one epoll set per core,
// that reads each ready socket once into a reused buffer and scans
// progress frames in place for the sender, sequence number and send time.
//
// One process may hold at most about 19,900 sockets on the development
// machines (open-file limit 20,000), so a run with more connections is
// split into shards of whole rooms, each in its own `roombench shard`
// process (the program re-executes itself), driven by JSON lines over
// stdin and stdout. Connections can dial from several loopback source
// addresses (127.0.0.2, ...) so that more than the ~28,000 ephemeral ports
// of one address fit.
//
// The scenarios (seed, max, conns, peer, all) start their own redis-server
// and servers on loopback: roomstream connectors and workers (the
// roomstream binary), or the Node stack it is compared with (peer/:
// socket.io 4.8 with @socket.io/redis-streams-adapter, installed with npm
// ci).
//
// Max and peer measure what the servers hold per server core: with --pin
// (pin.go, the default on two cores or more) every server process, Redis
// included, runs on one core and the generator on the others. Each step
// records, per process role, CPU per inbound event and per delivery from
// /proc, Redis's INFO commandstats per event, and the generator's own CPU
// (cost.go); a step whose generator was too busy has no result and ends
// the search. Peer runs max for each room size (--room-sizes) against both
// stacks and prints one Markdown table per size (peer.go).
//
// This package is test tooling: no server code depends on it, and the
// roomstream binary does not link it.
package bench
