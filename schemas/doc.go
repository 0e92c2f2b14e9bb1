// Package schemas is roomstream's event catalogue: the payload types of the
// design document, their validation (whose id, size and mime type checks
// the server API and the demo share) and the error codes a client can
// receive (the stream formats that carry events between processes are
// package streams'). It has no I/O and no dependencies beyond the
// standard library, so every other package (and replay tools) can share it.
package schemas
