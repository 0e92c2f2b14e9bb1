// Package api is roomstream's server API for backends and operators: an
// HTTP JSON interface under /api/v1/ (served by connectors; infra/cli
// mounts it) and the same operations for the CLI's rooms and users
// commands.
//
// It must not change a room's state itself: every change to a room is
// appended to the room's partition stream as a command the workers apply
// (ordered with client events, applied once, in the audit log). Nor does
// it reach sockets: a disconnect goes to each connector through its
// outbound stream. Reads come straight from the design's Redis keys; a
// room's state is decoded by streams, as the workers decode a join's.
//
//   - config.go: API_KEY, API_ADDR, API_REVOKE_TTL and their checks
//   - handler.go: routing, the bearer key (failed attempts limited per
//     client address), request bodies and JSON answers
//   - errors.go: refusals with their HTTP status
//   - service.go: Service, and the commands that remove a member or unlock
//   - publish.go: a published event's validation and its idempotency
//     (scripts/idempotency.lua: the key's record and its generation)
//   - rooms.go: a room's state, and the listing of rooms across a cluster
//   - users.go: a user's sockets and rooms, disconnect and revocation
package api
