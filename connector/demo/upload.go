package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/roomstream/roomstream/connector/auth"
	"github.com/roomstream/roomstream/schemas"
)

// CreateUploadRequest is the body of POST /demo/uploads.
type CreateUploadRequest struct {
	Name     string `json:"name"`
	Size     *int64 `json:"size"`
	MimeType string `json:"mimeType,omitempty"`
}

// CreateUploadResponse is the answer of POST /demo/uploads. ID is the
// fileId and uploadId the page reports over the socket.
type CreateUploadResponse struct {
	ID        string `json:"id"`
	ChunkSize int64  `json:"chunkSize"`
	Complete  bool   `json:"complete"`
}

// ChunkResponse is the answer of PUT /demo/uploads/{id}.
type ChunkResponse struct {
	Received int64 `json:"received"`
	Size     int64 `json:"size"`
	Complete bool  `json:"complete"`
}

// authed passes the verified identity of the request's Bearer token to h.
func (a *App) authed(h func(http.ResponseWriter, *http.Request, auth.Identity)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="roomstream demo"`)
			fail(w, http.StatusUnauthorized, schemas.CodeUnauthorized, "send the demo token as Authorization: Bearer <token>")
			return
		}
		ident, verr := a.verifier.Verify(strings.TrimSpace(tok))
		if verr != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="roomstream demo", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, verr)
			return
		}
		h(w, r, ident)
	}
}

func (a *App) createUpload(w http.ResponseWriter, r *http.Request, who auth.Identity) {
	body, err := readBody(w, r, 8<<10)
	if errors.Is(err, errTooLarge) {
		fail(w, http.StatusRequestEntityTooLarge, schemas.CodePayloadTooLarge, "the body must be at most 8 KiB: send only the file's name, size and type here")
		return
	}
	if err != nil {
		fail(w, http.StatusBadRequest, schemas.CodeInvalidPayload, "could not read the body: %v", err)
		return
	}
	var req CreateUploadRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil || dec.More() {
		fail(w, http.StatusBadRequest, schemas.CodeInvalidPayload, `the body must be a JSON object like {"name":"a.pdf","size":1234,"mimeType":"application/pdf"}`)
		return
	}
	switch {
	case req.Name == "":
		fail(w, http.StatusBadRequest, schemas.CodeInvalidPayload, "name (the file name) is required")
		return
	case !schemas.ValidText(req.Name, schemas.MaxNameLen):
		fail(w, http.StatusBadRequest, schemas.CodeInvalidPayload, "name must be valid text of at most %d bytes without control characters", schemas.MaxNameLen)
		return
	case req.Size == nil:
		fail(w, http.StatusBadRequest, schemas.CodeInvalidPayload, "size (in bytes) is required")
		return
	case *req.Size < 0:
		fail(w, http.StatusBadRequest, schemas.CodeInvalidPayload, "size must not be negative, got %d", *req.Size)
		return
	case !schemas.ValidMimeType(req.MimeType):
		fail(w, http.StatusBadRequest, schemas.CodeInvalidPayload, "mimeType must be printable ASCII of at most %d bytes", schemas.MaxNameLen)
		return
	}
	u, serr := a.store.create(who.UserID, req.Name, req.MimeType, *req.Size)
	if serr != nil {
		writeError(w, serr.status, serr.err)
		return
	}
	a.log.Info("demo upload created", "id", u.id, "user", who.UserID, "file", u.name, "size", u.size)
	writeJSON(w, http.StatusCreated, CreateUploadResponse{ID: u.id, ChunkSize: ChunkSize, Complete: u.size == 0})
}

// writeChunk appends the request body to an upload at ?offset=, read no
// faster than the configured upload rate.
func (a *App) writeChunk(w http.ResponseWriter, r *http.Request, who auth.Identity) {
	id := r.PathValue("id")
	q := r.URL.Query().Get("offset")
	offset, err := strconv.ParseInt(q, 10, 64)
	if err != nil || offset < 0 {
		fail(w, http.StatusBadRequest, schemas.CodeInvalidPayload, "offset must be a non-negative integer (the bytes already sent), got %q", q)
		return
	}
	u, serr := a.store.begin(id, who.UserID, offset)
	if serr != nil {
		writeJSON(w, serr.status, errorBody{Error: serr.err, Received: serr.received})
		return
	}
	allowed := min(u.size-offset, MaxChunk)
	if r.ContentLength > allowed {
		a.store.finish(u, 0)
		if r.ContentLength > MaxChunk {
			fail(w, http.StatusRequestEntityTooLarge, schemas.CodePayloadTooLarge, "a chunk may be at most %s, got %s", HumanBytes(MaxChunk), HumanBytes(r.ContentLength))
		} else {
			fail(w, http.StatusRequestEntityTooLarge, schemas.CodePayloadTooLarge, "the chunk (%d bytes at offset %d) passes the declared size of %d bytes", r.ContentLength, offset, u.size)
		}
		return
	}
	n, werr := a.copyChunk(r.Context(), u, offset, http.MaxBytesReader(w, r.Body, allowed))
	received, done := a.store.finish(u, n)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(werr, &mbe):
		writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{
			Error:    schemas.Errorf(schemas.CodePayloadTooLarge, "the chunk passes the declared size of %d bytes or %s; the first %d bytes were kept", u.size, HumanBytes(MaxChunk), n),
			Received: &received,
		})
		return
	case werr != nil:
		a.log.Warn("demo upload chunk", "id", id, "err", werr)
		writeJSON(w, http.StatusBadRequest, errorBody{
			Error:    schemas.Errorf(schemas.CodeInvalidPayload, "the chunk was cut short after %d bytes: %v", n, werr),
			Received: &received,
		})
		return
	}
	if done {
		a.log.Info("demo upload complete", "id", id, "user", who.UserID, "file", u.name, "size", u.size)
	}
	writeJSON(w, http.StatusOK, ChunkResponse{Received: received, Size: u.size, Complete: done})
}

// copyChunk writes body to u's file at offset and returns the bytes written.
func (a *App) copyChunk(ctx context.Context, u *upload, offset int64, body io.Reader) (int64, error) {
	f, err := os.OpenFile(u.path, os.O_WRONLY, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var n int64
	buf := make([]byte, 32<<10)
	for {
		m, rerr := body.Read(buf)
		if m > 0 {
			if u.limiter != nil {
				if err := u.limiter.WaitN(ctx, m); err != nil {
					return n, err
				}
			}
			if _, err := f.WriteAt(buf[:m], offset+n); err != nil {
				return n, err
			}
			n += int64(m)
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

func (a *App) deleteUpload(w http.ResponseWriter, r *http.Request, who auth.Identity) {
	if serr := a.store.remove(r.PathValue("id"), who.UserID); serr != nil {
		writeError(w, serr.status, serr.err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// download serves a completed upload as an attachment: never rendered by
// the browser, whatever its content.
func (a *App) download(w http.ResponseWriter, r *http.Request) {
	u, ok := a.store.file(r.PathValue("id"))
	if !ok {
		fail(w, http.StatusNotFound, schemas.CodeUploadNotFound, "no completed file %s (files live as long as roomstream dev runs)", r.PathValue("id"))
		return
	}
	f, err := os.Open(u.path)
	if err != nil {
		fail(w, http.StatusNotFound, schemas.CodeUploadNotFound, "the file is gone: %v", err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		fail(w, http.StatusInternalServerError, schemas.CodeInternal, "stat: %v", err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("X-Content-Type-Options", "nosniff")
	cd := mime.FormatMediaType("attachment", map[string]string{"filename": u.name})
	if cd == "" {
		cd = "attachment"
	}
	h.Set("Content-Disposition", cd)
	h.Set("Cache-Control", "no-store")
	http.ServeContent(w, r, "", st.ModTime(), f)
}
