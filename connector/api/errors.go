package api

import (
	"github.com/roomstream/roomstream/schemas"
)

// Error is a refusal with its HTTP status.
type Error struct {
	Status int
	Err    *schemas.Error
}

func (e *Error) Error() string { return e.Err.Error() }

// badField refuses the request for what field holds (400).
func badField(field, format string, args ...any) *Error {
	e := schemas.Errorf(schemas.CodeInvalidPayload, field+" "+format, args...)
	e.Field = field
	return &Error{Status: 400, Err: e}
}

// notFound: what the request names does not exist (404).
func notFound(format string, args ...any) *Error {
	return &Error{Status: 404, Err: schemas.Errorf(schemas.CodeNotFound, format, args...)}
}

// conflict: the request does not fit the state it found (409).
func conflict(code schemas.Code, format string, args ...any) *Error {
	return &Error{Status: 409, Err: schemas.Errorf(code, format, args...)}
}

// invalid answers a refusal of schemas' field checks with 400; nil stays
// nil.
func invalid(e *schemas.Error) *Error {
	if e == nil {
		return nil
	}
	return &Error{Status: 400, Err: e}
}

// checkID refuses a missing or malformed id, as the client events' ids
// are refused.
func checkID(field, s string) *Error { return invalid(schemas.CheckID(field, s)) }
