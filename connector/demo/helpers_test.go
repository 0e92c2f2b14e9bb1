package demo

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/roomstream/roomstream/connector/auth"
	"github.com/roomstream/roomstream/schemas"
)

const testSecret = "demo-test-secret-0123456789abcdef"

// testEnv is a demo app behind a real HTTP server.
type testEnv struct {
	t   *testing.T
	app *App
	srv *httptest.Server
}

func newTestEnv(t *testing.T, mod func(*Config)) *testEnv {
	t.Helper()
	cfg := DefaultConfig()
	cfg.UploadRate = 0
	if mod != nil {
		mod(&cfg)
	}
	ac := auth.Config{JWTSecret: testSecret}
	mux := http.NewServeMux()
	app, err := Mount(mux, ac, cfg, discardLogger())
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		if err := app.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &testEnv{t: t, app: app, srv: srv}
}

func (e *testEnv) token(user, name string) string {
	e.t.Helper()
	tok, err := auth.Sign(testSecret, user, name, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// do sends a request; body may be nil, a []byte, an io.Reader or a value
// to encode as JSON.
func (e *testEnv) do(method, path, token string, body any) (*http.Response, []byte) {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = bytes.NewReader([]byte(b))
	case io.Reader:
		r = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return res, out
}

// refusal decodes an error answer.
func refusal(t *testing.T, body []byte) (schemas.Code, string, *int64) {
	t.Helper()
	var eb struct {
		Error    *schemas.Error `json:"error"`
		Received *int64         `json:"received"`
	}
	if err := json.Unmarshal(body, &eb); err != nil || eb.Error == nil {
		t.Fatalf("not an error answer: %s", body)
	}
	return eb.Error.Code, eb.Error.Message, eb.Received
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// serve runs one request through h without a network.
func serve(h http.Handler, method, path string, body []byte) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, bytes.NewReader(body)))
	return rec
}

// writing reports whether a chunk of upload id is being written.
func (s *store) writing(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.uploads[id]
	return ok && u.busy
}
