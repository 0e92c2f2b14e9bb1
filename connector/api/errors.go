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

func badField(field, format string, args ...any) *Error {
	e := schemas.Errorf(schemas.CodeInvalidPayload, field+" "+format, args...)
	e.Field = field
	return &Error{Status: 400, Err: e}
}

func notFound(format string, args ...any) *Error {
	return &Error{Status: 404, Err: schemas.Errorf(schemas.CodeNotFound, format, args...)}
}

func conflict(code schemas.Code, format string, args ...any) *Error {
	return &Error{Status: 409, Err: schemas.Errorf(code, format, args...)}
}

func checkID(field, s string) *Error {
	if s == "" {
		return badField(field, "is required")
	}
	if !schemas.ValidID(s) {
		return badField(field, "must be 1-%d characters of letters, digits and _-.:@|/+=~", schemas.MaxIDLen)
	}
	return nil
}
