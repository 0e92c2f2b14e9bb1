package demo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/roomstream/roomstream/connector/auth"
	"github.com/roomstream/roomstream/schemas"
)

// maxTokenRequest bounds the body of POST /demo/token.
const maxTokenRequest = 4 << 10

// TokenRequest is the body of POST /demo/token.
type TokenRequest struct {
	Name string `json:"name"`
}

// TokenResponse is the answer of POST /demo/token.
type TokenResponse struct {
	Token     string `json:"token"`
	UserID    string `json:"userId"`
	UserName  string `json:"userName"`
	ExpiresAt string `json:"expiresAt"`
	Limits    Limits `json:"limits"`
}

// Limits tells the page what the upload store accepts.
type Limits struct {
	MaxUpload  int64 `json:"maxUpload"`
	UploadRate int64 `json:"uploadRate"`
	ChunkSize  int64 `json:"chunkSize"`
}

// mintToken signs a token for the user name in the body. The user id is
// derived from the name, so that one name is one user across tabs.
func (a *App) mintToken(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, maxTokenRequest)
	if errors.Is(err, errTooLarge) {
		fail(w, http.StatusRequestEntityTooLarge, schemas.CodePayloadTooLarge, "the body must be at most %d bytes", maxTokenRequest)
		return
	}
	if err != nil {
		fail(w, http.StatusBadRequest, schemas.CodeInvalidPayload, "could not read the body: %v", err)
		return
	}
	var req TokenRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil || dec.More() {
		fail(w, http.StatusBadRequest, schemas.CodeInvalidPayload, `the body must be a JSON object like {"name":"Alice"}`)
		return
	}
	name, verr := CleanName(req.Name)
	if verr != nil {
		writeError(w, http.StatusBadRequest, verr)
		return
	}
	id := UserID(name)
	tok, err := auth.Sign(a.secret, id, name, a.cfg.TokenTTL)
	if err != nil {
		a.log.Error("sign demo token", "user", id, "err", err)
		fail(w, http.StatusInternalServerError, schemas.CodeInternal, "could not sign a token")
		return
	}
	a.log.Info("demo token minted", "user", id, "name", name)
	writeJSON(w, http.StatusOK, TokenResponse{
		Token: tok, UserID: id, UserName: name,
		ExpiresAt: time.Now().Add(a.cfg.TokenTTL).UTC().Format(time.RFC3339),
		Limits:    Limits{MaxUpload: a.cfg.MaxUpload, UploadRate: a.cfg.UploadRate, ChunkSize: ChunkSize},
	})
}

// CleanName trims a user name and folds its inner white space; it refuses
// an empty name, a name longer than MaxNameRunes characters, and control
// characters or invalid UTF-8.
func CleanName(s string) (string, *schemas.Error) {
	if !utf8.ValidString(s) {
		return "", nameErr("name must be valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != ' ' {
			return "", nameErr("name must not contain control characters (tabs, line breaks...)")
		}
	}
	s = strings.Join(strings.Fields(s), " ")
	switch n := utf8.RuneCountInString(s); {
	case n == 0:
		return "", nameErr("name is required: pick a name to show to the others")
	case n > MaxNameRunes:
		return "", nameErr("name must be at most %d characters, got %d", MaxNameRunes, n)
	}
	return s, nil
}

func nameErr(format string, args ...any) *schemas.Error {
	e := schemas.Errorf(schemas.CodeInvalidPayload, format, args...)
	e.Field = "name"
	return e
}

// UserID derives a user id from a clean name: its ASCII letters and digits
// in lower case, other runs of characters as '-'. A name with no ASCII
// letter or digit gets "user-" and a hash of the name.
func UserID(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			continue
		}
		dash = true
	}
	id := b.String()
	if id == "" {
		sum := sha256.Sum256([]byte(name))
		return "user-" + hex.EncodeToString(sum[:6])
	}
	if len(id) > schemas.MaxIDLen {
		id = strings.TrimRight(id[:schemas.MaxIDLen], "-")
	}
	return id
}

var errTooLarge = errors.New("demo: body too large")

// readBody reads a whole small body, refusing more than limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, errTooLarge
	}
	return buf.Bytes(), err
}
