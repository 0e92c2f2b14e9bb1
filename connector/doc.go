// Package connector holds the client connections of roomstream. It speaks
// Engine.IO v4 and Socket.IO v5 to clients over WebSocket and over HTTP
// long-polling (upgraded to a WebSocket when the client can), and passes a
// polling request that reaches the wrong connector on to the one holding
// its session, so no sticky sessions are needed. It authenticates clients
// with JWTs (connector/auth; revoked tokens are refused), validates their
// payloads (schemas), appends every accepted event to its room's inbound
// partition stream, and delivers what the workers write to its own
// outbound stream to the sockets it names. A client whose connection drops
// can recover its socket, on this connector or another one, within the
// recovery window: same id, same rooms, and every event it missed, once.
// Limits bound what one client, address or user can take: connections,
// the time a request may take, rooms, rate, refusals, send queues, and
// the workers' backlog.
//
// It holds no room logic (that is package workers) and no state another
// process needs: everything shared lives in Redis, read and written
// through package streams.
//
// Files:
//
//   - server.go: Server, its loops, draining, and the health handlers
//   - config.go: the connector's settings (auth.Config among them) and
//     their checks
//   - engineio.go: the Engine.IO endpoint and the WebSocket handshake
//   - hijack.go: small buffers for accepted connections
//   - deadlines.go: the HTTP server clients reach: request deadlines
//     (a held poll's longer), and the guard (connector/netguard) that
//     names clients and counts their connections
//   - polling.go: HTTP long-polling sessions and their upgrade
//   - forward.go: polling requests passed on to the connector holding
//     the session; browser origins and CORS
//   - relay.go: the forwarding client: connections per peer, a silent
//     peer answered 502, deadlines on what is copied either way
//   - socket.go: one client connection, its send queue, and why it ends
//   - reader.go: the read loop and Engine.IO packets
//   - writer.go: the writer goroutine and the close handshake
//   - wire.go: the bytes going out on a connection, framed and written
//     without blocking the outbound reader
//   - ping.go: Engine.IO pings, the ping timeout, and which pongs count
//   - events.go: Socket.IO packets: CONNECT, authenticate, refusals,
//     token expiry
//   - roomevent.go: room events, checked, parsed and queued for
//     appending; joins and leaves
//   - session.go: the session and socket keys of an authenticated socket
//     (within the user's MAX_CONNS_PER_USER), and the revocation check
//   - rooms.go: a socket's rooms, following the workers' answers to its
//     joins; a join admitted against MAX_ROOMS, MAX_ROOMS_PER_USER and
//     ROOM_CREATE_RATE
//   - access.go: who may join which room (ROOM_ACCESS: open, the
//     token's rooms claim, or the application's backend), and the rooms
//     a fresh token no longer allows
//   - held.go: sockets held for recovery after a drop, and how a socket
//     leaves its rooms (closed, expired, kicked)
//   - recovery.go: connection state recovery: the socket found, taken
//     over, its rooms moved here
//   - catchup.go: what a recovered socket missed, read back from its old
//     connector's outbound stream
//   - append.go: appending inbound events, batched and retried
//   - appendq.go: a socket's events waiting to be appended, in order
//   - outbound.go: reading the outbound stream and delivering its entries
//   - batch.go: the frames of one outbound read, gathered per socket and
//     written once
//   - members.go: which local sockets are in which room
//   - backlog.go: refusing events of partitions the workers are behind on
//   - limits.go: sessions per connector, connections and handshakes per
//     client address
//   - heartbeat.go: the connector's heartbeat and its sockets' resume
//     tokens
//   - metrics.go: the connector's Prometheus metrics
package connector
