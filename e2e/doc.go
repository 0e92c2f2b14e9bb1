// Package e2e holds roomstream's end-to-end suites: real connector and
// worker processes against a real redis-server (or Redis Cluster), driven
// by real Socket.IO clients (the Go sioclient and socket.io-client in
// Node), broken on purpose where the invariants say nothing may be lost.
// The package itself holds only tests; with -short they are skipped.
//
// Subpackages and folders:
//
//	harness     runs roomstream as processes: build, start, kill, restart, /readyz
//	sioclient   a small Go Socket.IO v4 client for the tests and the load generator
//	testkit     what the suites share to act as users: tokens, dial, acks, waits
//	containers  one container per process: flow, failover, scaling, Redis restart
//	browser     the demo web app of `roomstream dev` in a real browser
//	node        socket.io-client scripts (design document's client, polling, recovery)
//	bench       the load generator and benchmark scenarios (cmd/roombench)
//	mutate      the mutation check: breaks each guarantee, fails if its tests pass
package e2e
