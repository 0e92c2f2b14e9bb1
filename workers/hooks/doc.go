// Package hooks delivers the applied-events feed (feed:{p}, written by
// the workers) as signed webhooks: `roomstream hooks` processes form one
// consumer group over the feed streams, share the partitions by leases
// as workers share the inbound ones, and POST every event to
// ROOMSTREAM_WEBHOOK_URL, signed by the Standard Webhooks convention.
// A room's events go out in order, each retried with backoff until it is
// accepted or goes to the webhook dead letters; other rooms do not wait.
// It reads the feed and never changes room state.
//
// Files:
//
//	hooks.go    Hooks: New, Run, the partition leases and their fair share
//	deliver.go  one partition: reads, a queue per room, deliveries, retries, dead letters
//	sign.go     the body of a delivery and its signature
//	filter.go   which event types are delivered (ROOMSTREAM_WEBHOOK_EVENTS)
//	config.go   Config and its validation
//	metrics.go  the hooks' Prometheus metrics
package hooks
