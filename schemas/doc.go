// Package schemas is roomstream's event catalogue: the payload types of the
// design document, their validation (whose id, size and mime type checks
// the server API and the demo share), the error codes a client can
// receive and the event version. It has no I/O and no dependencies beyond the
// standard library, so every other package (and replay tools) can share it.
package schemas
