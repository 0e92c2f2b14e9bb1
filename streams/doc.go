// Package streams is the plumbing shared by connectors and workers: every
// Redis key name, the inbound envelope and the outbound entry, the room
// partitioner, the producer, the consumer-group reader with claiming of
// stale entries, partition leases, trimming, dead letters and the Redis
// client itself. It holds no room logic (that is package workers) and no
// socket handling (that is package connector).
package streams
