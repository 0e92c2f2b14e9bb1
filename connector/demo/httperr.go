package demo

import (
	"encoding/json"
	"net/http"

	"github.com/roomstream/roomstream/schemas"
)

// errorBody is what every refused demo request answers: the same
// {code, message} shape as a refused acknowledgement.
type errorBody struct {
	Error *schemas.Error `json:"error"`
	// Received is set on an offset mismatch: where the next chunk must start.
	Received *int64 `json:"received,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, e *schemas.Error) {
	writeJSON(w, status, errorBody{Error: e})
}

func fail(w http.ResponseWriter, status int, code schemas.Code, format string, args ...any) {
	writeError(w, status, schemas.Errorf(code, format, args...))
}
