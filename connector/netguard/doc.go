// Package netguard is what a connector's HTTP listener does before any
// handler runs: it names each request's client (its peer, or, from the
// trusted proxies of ROOMSTREAM_TRUSTED_PROXIES, the address they pass on
// in X-Forwarded-For or the PROXY protocol), keys the per-address limits
// by it (an IPv4 address, an IPv6 /64), counts each client's open
// connections and refuses those past the limit, and rate-limits per
// address key. It knows nothing of Engine.IO sessions or the API's
// routes: the connector and the API use its keys and limiters.
//
//   - trust.go: the trusted proxies, a request's client address and the
//     key it is limited by
//   - guard.go: Guard, the connection limit and its refusals
//   - conn.go: accepted connections, counted, PROXY headers read
//   - limiter.go: a token bucket per address key
package netguard
