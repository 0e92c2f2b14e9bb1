// Package auth verifies the JWTs clients present and says who they are:
// HS256 with a shared secret, public keys from a PEM file, or a JSON Web
// Key Set fetched by URL, with every algorithm pinned to its key type. It
// also signs tokens, for `roomstream dev`, the `token` command and tests
// (production tokens come from the application's auth service).
//
// It holds no socket or Redis code: revocations (server API) are checked
// by the connector, which owns the session state. Files:
//
//   - config.go: the JWT_* and JWKS_* settings, their validation, and the
//     verifier they ask for
//   - verify.go: Verifier, Identity, and the readable refusal reasons
//   - publickeys.go: PEM public keys and the one algorithm each key type
//     verifies
//   - jwks.go: the key set fetched by URL, refreshed in the background
//   - sign.go: signing keys and token signing
package auth
