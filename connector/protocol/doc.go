// Package protocol encodes and decodes Engine.IO v4 and Socket.IO v5
// packets as they travel in WebSocket frames. It holds no connection state
// and does no I/O: the connector, the test clients and the load generator
// all share it. Decoders are strict: anything the reference client would
// not send is an error, never a panic.
package protocol
