// Package e2e holds roomstream's end-to-end suites: real connector and
// worker processes against a real redis-server (or Redis Cluster), driven
// by real Socket.IO clients (the Go sioclient and socket.io-client in
// Node), broken on purpose where the invariants say nothing may be lost.
// Subpackages: harness (process control), sioclient (Go client).
package e2e
