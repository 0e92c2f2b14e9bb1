package demo

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// upload is one file being uploaded, or uploaded, to the demo store.
type upload struct {
	id, owner, name, mime string
	size                  int64
	path                  string
	limiter               *rate.Limiter // nil: unlimited

	// Guarded by store.mu.
	received int64
	touched  time.Time
	busy     bool // a chunk is being written
	done     bool
}

// store keeps uploads in a folder, within a byte budget. Every upload
// reserves its declared size when it is created.
type store struct {
	dir string
	cfg Config
	now func() time.Time

	mu       sync.Mutex
	uploads  map[string]*upload
	reserved int64
	closed   bool
}

func newStore(dir string, cfg Config) *store {
	return &store{dir: dir, cfg: cfg, now: time.Now, uploads: map[string]*upload{}}
}

// storeErr is a refusal with its HTTP status.
type storeErr struct {
	status int
	err    *schemas.Error
	// received is set on an offset mismatch.
	received *int64
}

func refuse(status int, code schemas.Code, format string, args ...any) *storeErr {
	return &storeErr{status: status, err: schemas.Errorf(code, format, args...)}
}

// create reserves room for a file of size bytes and creates its empty
// file. A file of 0 bytes is complete at once.
func (s *store) create(owner, name, mime string, size int64) (*upload, *storeErr) {
	if size > s.cfg.MaxUpload {
		return nil, refuse(http.StatusRequestEntityTooLarge, schemas.CodePayloadTooLarge,
			"%s is %s; the demo accepts files of at most %s", name, HumanBytes(size), HumanBytes(s.cfg.MaxUpload))
	}
	id := "f" + streams.RandomID(16)
	u := &upload{id: id, owner: owner, name: name, mime: mime, size: size, path: filepath.Join(s.dir, id)}
	if s.cfg.UploadRate > 0 {
		u.limiter = rate.NewLimiter(rate.Limit(s.cfg.UploadRate), 64<<10)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, refuse(http.StatusServiceUnavailable, schemas.CodeUnavailable, "the demo is shutting down")
	}
	s.sweepLocked()
	if s.reserved+size > s.cfg.StoreLimit {
		return nil, refuse(http.StatusInsufficientStorage, schemas.CodeUnavailable,
			"the demo store is full (%s of %s used); restart roomstream dev to empty it",
			HumanBytes(s.reserved), HumanBytes(s.cfg.StoreLimit))
	}
	f, err := os.OpenFile(u.path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, refuse(http.StatusInternalServerError, schemas.CodeInternal, "could not create the file: %v", err)
	}
	_ = f.Close()
	u.touched = s.now()
	u.done = size == 0
	s.uploads[id] = u
	s.reserved += size
	return u, nil
}

// sweepLocked forgets unfinished uploads left idle for too long.
func (s *store) sweepLocked() {
	cut := s.now().Add(-staleUpload)
	for id, u := range s.uploads {
		if !u.done && !u.busy && u.touched.Before(cut) {
			s.dropLocked(id, u)
		}
	}
}

func (s *store) dropLocked(id string, u *upload) {
	delete(s.uploads, id)
	s.reserved -= u.size
	_ = os.Remove(u.path)
}

// begin claims upload id for writing a chunk at offset on behalf of user.
func (s *store) begin(id, user string, offset int64) (*upload, *storeErr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.uploads[id]
	switch {
	case u == nil:
		return nil, refuse(http.StatusNotFound, schemas.CodeUploadNotFound, "no upload %s: it was never created, was abandoned, or the server restarted", id)
	case u.owner != user:
		return nil, refuse(http.StatusForbidden, schemas.CodeForbidden, "upload %s belongs to another user", id)
	case u.done:
		return nil, refuse(http.StatusConflict, schemas.CodeInvalidPayload, "upload %s is already complete", id)
	case u.busy:
		return nil, refuse(http.StatusConflict, schemas.CodeInvalidPayload, "another chunk of upload %s is being written; send chunks one at a time", id)
	case offset != u.received:
		e := refuse(http.StatusConflict, schemas.CodeInvalidPayload, "offset %d does not match the %d bytes received so far", offset, u.received)
		received := u.received
		e.received = &received
		return nil, e
	}
	u.busy = true
	return u, nil
}

// finish records n more bytes written to u and releases it.
func (s *store) finish(u *upload, n int64) (received int64, done bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u.busy = false
	u.received += n
	u.touched = s.now()
	u.done = u.received == u.size
	return u.received, u.done
}

// remove abandons an upload (or deletes a file) of user.
func (s *store) remove(id, user string) *storeErr {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.uploads[id]
	switch {
	case u == nil:
		return refuse(http.StatusNotFound, schemas.CodeUploadNotFound, "no upload %s", id)
	case u.owner != user:
		return refuse(http.StatusForbidden, schemas.CodeForbidden, "upload %s belongs to another user", id)
	case u.busy:
		return refuse(http.StatusConflict, schemas.CodeInvalidPayload, "a chunk of upload %s is being written; try again when it is answered", id)
	}
	s.dropLocked(id, u)
	return nil
}

// file returns a completed upload.
func (s *store) file(id string) (*upload, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.uploads[id]
	if u == nil || !u.done {
		return nil, false
	}
	return u, true
}

func (s *store) close() error {
	s.mu.Lock()
	s.closed = true
	s.uploads = map[string]*upload{}
	s.reserved = 0
	s.mu.Unlock()
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("demo: remove upload folder: %w", err)
	}
	return nil
}

// HumanBytes formats n bytes for people: 512 B, 1.5 KiB, 32 MiB.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	suffix := "KMGTP"[exp : exp+1]
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d %siB", int64(v), suffix)
	}
	return fmt.Sprintf("%.1f %siB", v, suffix)
}
