// Package connector holds the WebSocket connections: it speaks Engine.IO v4
// and Socket.IO v5 to clients, authenticates them with JWTs, validates
// their payloads, appends every accepted event to its room's inbound
// partition stream, and delivers what workers write to its own outbound
// stream. It holds no room logic and no state another process needs:
// everything shared lives in Redis.
package connector
