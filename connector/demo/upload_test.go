package demo

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/roomstream/roomstream/connector/auth"
	"github.com/roomstream/roomstream/schemas"
)

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// create makes an upload and returns its id.
func (e *testEnv) create(token, name string, size int64) string {
	e.t.Helper()
	res, body := e.do("POST", "/demo/uploads", token, map[string]any{"name": name, "size": size, "mimeType": "application/pdf"})
	if res.StatusCode != http.StatusCreated {
		e.t.Fatalf("create upload: %d %s", res.StatusCode, body)
	}
	var cr CreateUploadResponse
	if err := json.Unmarshal(body, &cr); err != nil {
		e.t.Fatal(err)
	}
	if cr.ChunkSize != ChunkSize || !schemas.ValidID(cr.ID) {
		e.t.Fatalf("create upload answered %+v", cr)
	}
	return cr.ID
}

func (e *testEnv) put(token, id string, offset int64, chunk any) (*http.Response, []byte) {
	e.t.Helper()
	return e.do("PUT", fmt.Sprintf("/demo/uploads/%s?offset=%d", id, offset), token, chunk)
}

func TestUploadRoundTrip(t *testing.T) {
	e := newTestEnv(t, nil)
	alice := e.token("alice", "Alice")
	data := randomBytes(t, 2*ChunkSize+12345)
	id := e.create(alice, "résumé \"final\".pdf", int64(len(data)))

	res, _ := e.do("GET", "/demo/files/"+id, "", nil)
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("download of an unfinished upload = %d, want 404", res.StatusCode)
	}
	var last ChunkResponse
	for off := 0; off < len(data); off += ChunkSize {
		end := min(off+ChunkSize, len(data))
		res, body := e.put(alice, id, int64(off), data[off:end])
		if res.StatusCode != http.StatusOK {
			t.Fatalf("chunk at %d: %d %s", off, res.StatusCode, body)
		}
		if err := json.Unmarshal(body, &last); err != nil {
			t.Fatal(err)
		}
		if want := (ChunkResponse{Received: int64(end), Size: int64(len(data)), Complete: end == len(data)}); last != want {
			t.Fatalf("chunk at %d answered %+v, want %+v", off, last, want)
		}
	}

	res, got := e.do("GET", "/demo/files/"+id, "", nil)
	if res.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
		t.Fatalf("download: %d, %d bytes (equal: %v), want 200 and the %d bytes sent", res.StatusCode, len(got), bytes.Equal(got, data), len(data))
	}
	for k, want := range map[string]string{
		"Content-Type":           "application/octet-stream",
		"X-Content-Type-Options": "nosniff",
		"Content-Disposition":    `attachment; filename*=utf-8''r%C3%A9sum%C3%A9%20%22final%22.pdf`,
	} {
		if h := res.Header.Get(k); h != want {
			t.Errorf("download header %s = %q, want %q", k, h, want)
		}
	}

	// Further chunks are refused; the owner can delete the file.
	res, body := e.put(alice, id, int64(len(data)), []byte("x"))
	if code, msg, _ := refusal(t, body); res.StatusCode != http.StatusConflict || code != schemas.CodeInvalidPayload || !strings.Contains(msg, "already complete") {
		t.Errorf("chunk after completion: %d %s", res.StatusCode, body)
	}
	bob := e.token("bob", "Bob")
	if res, body := e.do("DELETE", "/demo/uploads/"+id, bob, nil); res.StatusCode != http.StatusForbidden {
		t.Errorf("delete by another user: %d %s, want 403", res.StatusCode, body)
	}
	if res, body := e.do("DELETE", "/demo/uploads/"+id, alice, nil); res.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d %s", res.StatusCode, body)
	}
	if res, _ := e.do("GET", "/demo/files/"+id, "", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("download after delete = %d, want 404", res.StatusCode)
	}
	if entries, _ := os.ReadDir(e.app.Dir()); len(entries) != 0 {
		t.Errorf("files left in the store after delete: %v", entries)
	}
}

func TestEmptyFileIsCompleteAtOnce(t *testing.T) {
	e := newTestEnv(t, nil)
	alice := e.token("alice", "Alice")
	res, body := e.do("POST", "/demo/uploads", alice, map[string]any{"name": "empty.txt", "size": 0})
	var cr CreateUploadResponse
	if res.StatusCode != http.StatusCreated || json.Unmarshal(body, &cr) != nil || !cr.Complete {
		t.Fatalf("create empty: %d %s", res.StatusCode, body)
	}
	if res, got := e.do("GET", "/demo/files/"+cr.ID, "", nil); res.StatusCode != http.StatusOK || len(got) != 0 {
		t.Errorf("download empty: %d, %d bytes", res.StatusCode, len(got))
	}
}

func TestUploadAuth(t *testing.T) {
	e := newTestEnv(t, nil)
	expired, err := auth.Sign(testSecret, "alice", "Alice", -time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := auth.Sign("another-secret-0123456789abcdef", "alice", "Alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"name": "a.txt", "size": 1}
	for _, c := range []struct {
		name, auth string
		code       schemas.Code
	}{
		{"no header", "", schemas.CodeUnauthorized},
		{"not bearer", "Basic YTpi", schemas.CodeUnauthorized},
		{"garbage", "Bearer abc", schemas.CodeInvalidToken},
		{"other secret", "Bearer " + forged, schemas.CodeInvalidToken},
		{"expired", "Bearer " + expired, schemas.CodeExpiredToken},
	} {
		t.Run(c.name, func(t *testing.T) {
			j, _ := json.Marshal(body)
			req, _ := http.NewRequest("POST", e.srv.URL+"/demo/uploads", bytes.NewReader(j))
			if c.auth != "" {
				req.Header.Set("Authorization", c.auth)
			}
			res, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			code, msg, _ := refusal(t, b)
			if res.StatusCode != http.StatusUnauthorized || code != c.code || msg == "" {
				t.Errorf("%d %s, want 401 %s", res.StatusCode, b, c.code)
			}
			if !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("no WWW-Authenticate: Bearer header")
			}
		})
	}
}

func TestCreateUploadRefusals(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.MaxUpload = 1 << 20; c.StoreLimit = 3 << 20 })
	alice := e.token("alice", "Alice")
	for _, c := range []struct {
		name   string
		body   any
		status int
		code   schemas.Code
		msg    string
	}{
		{"too big", map[string]any{"name": "big.iso", "size": 5 << 20}, 413, schemas.CodePayloadTooLarge, "big.iso is 5 MiB; the demo accepts files of at most 1 MiB"},
		{"negative size", map[string]any{"name": "a", "size": -1}, 400, schemas.CodeInvalidPayload, "size must not be negative"},
		{"no size", map[string]any{"name": "a"}, 400, schemas.CodeInvalidPayload, "size (in bytes) is required"},
		{"no name", map[string]any{"size": 1}, 400, schemas.CodeInvalidPayload, "name (the file name) is required"},
		{"control in name", map[string]any{"name": "a\nb", "size": 1}, 400, schemas.CodeInvalidPayload, "without control characters"},
		{"long name", map[string]any{"name": strings.Repeat("n", 300), "size": 1}, 400, schemas.CodeInvalidPayload, "at most 255 bytes"},
		{"bad mime", map[string]any{"name": "a", "size": 1, "mimeType": "text/plain\u00e9"}, 400, schemas.CodeInvalidPayload, "mimeType must be printable ASCII"},
		{"size as text", `{"name":"a","size":"12"}`, 400, schemas.CodeInvalidPayload, "JSON object like"},
		{"not JSON", `name=a`, 400, schemas.CodeInvalidPayload, "JSON object like"},
		{"huge body", `{"name":"` + strings.Repeat("a", 9000) + `","size":1}`, 413, schemas.CodePayloadTooLarge, "at most 8 KiB"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, body := e.do("POST", "/demo/uploads", alice, c.body)
			code, msg, _ := refusal(t, body)
			if res.StatusCode != c.status || code != c.code || !strings.Contains(msg, c.msg) {
				t.Errorf("%d %s, want %d %s containing %q", res.StatusCode, body, c.status, c.code, c.msg)
			}
		})
	}

	// The store limit: three 1 MiB reservations fill 3 MiB.
	for i := range 3 {
		e.create(alice, fmt.Sprintf("f%d", i), 1<<20)
	}
	res, body := e.do("POST", "/demo/uploads", alice, map[string]any{"name": "one more", "size": 1})
	if code, msg, _ := refusal(t, body); res.StatusCode != http.StatusInsufficientStorage || code != schemas.CodeUnavailable || !strings.Contains(msg, "store is full (3 MiB of 3 MiB used)") {
		t.Errorf("past the store limit: %d %s, want 507 unavailable", res.StatusCode, body)
	}
}

func TestChunkRefusals(t *testing.T) {
	e := newTestEnv(t, nil)
	alice, bob := e.token("alice", "Alice"), e.token("bob", "Bob")
	id := e.create(alice, "a.bin", 1000)
	if res, body := e.put(alice, id, 0, randomBytes(t, 400)); res.StatusCode != 200 {
		t.Fatalf("first chunk: %d %s", res.StatusCode, body)
	}
	for _, c := range []struct {
		name     string
		token    string
		path     string
		body     any
		status   int
		code     schemas.Code
		msg      string
		received int64 // -1: none
	}{
		{"unknown upload", alice, "/demo/uploads/fnope?offset=0", []byte("x"), 404, schemas.CodeUploadNotFound, "no upload fnope", -1},
		{"other user", bob, "/demo/uploads/" + id + "?offset=400", []byte("x"), 403, schemas.CodeForbidden, "belongs to another user", -1},
		{"offset behind", alice, "/demo/uploads/" + id + "?offset=0", []byte("x"), 409, schemas.CodeInvalidPayload, "offset 0 does not match the 400 bytes received", 400},
		{"offset ahead", alice, "/demo/uploads/" + id + "?offset=500", []byte("x"), 409, schemas.CodeInvalidPayload, "offset 500 does not match", 400},
		{"no offset", alice, "/demo/uploads/" + id, []byte("x"), 400, schemas.CodeInvalidPayload, "offset must be a non-negative integer", -1},
		{"bad offset", alice, "/demo/uploads/" + id + "?offset=-3", []byte("x"), 400, schemas.CodeInvalidPayload, `got "-3"`, -1},
		{"past declared size", alice, "/demo/uploads/" + id + "?offset=400", randomBytes(t, 601), 413, schemas.CodePayloadTooLarge, "passes the declared size of 1000 bytes", -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, body := e.do("PUT", c.path, c.token, c.body)
			code, msg, received := refusal(t, body)
			if res.StatusCode != c.status || code != c.code || !strings.Contains(msg, c.msg) {
				t.Errorf("%d %s, want %d %s containing %q", res.StatusCode, body, c.status, c.code, c.msg)
			}
			if c.received >= 0 && (received == nil || *received != c.received) {
				t.Errorf("received %v, want %d", received, c.received)
			}
		})
	}
	// Nothing above moved the upload on: the rest still fits exactly.
	if res, body := e.put(alice, id, 400, randomBytes(t, 600)); res.StatusCode != 200 || !strings.Contains(string(body), `"complete":true`) {
		t.Errorf("last chunk: %d %s", res.StatusCode, body)
	}
}

// A body of unknown length that passes the declared size keeps what fits
// and says so.
func TestChunkWithoutLengthPastSize(t *testing.T) {
	e := newTestEnv(t, nil)
	alice := e.token("alice", "Alice")
	id := e.create(alice, "a.bin", 100)
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write(randomBytes(t, 150))
		_ = pw.Close()
	}()
	res, body := e.put(alice, id, 0, pr)
	code, _, received := refusal(t, body)
	if res.StatusCode != http.StatusRequestEntityTooLarge || code != schemas.CodePayloadTooLarge || received == nil || *received != 100 {
		t.Errorf("%d %s, want 413 with received 100", res.StatusCode, body)
	}
}

func TestChunkTooLarge(t *testing.T) {
	e := newTestEnv(t, nil)
	alice := e.token("alice", "Alice")
	id := e.create(alice, "a.bin", 10<<20)
	res, body := e.put(alice, id, 0, randomBytes(t, MaxChunk+1))
	if code, msg, _ := refusal(t, body); res.StatusCode != 413 || code != schemas.CodePayloadTooLarge || !strings.Contains(msg, "a chunk may be at most 4 MiB") {
		t.Errorf("%d %s", res.StatusCode, body)
	}
}

// Two chunks of one upload at once: the second is refused.
func TestOneChunkAtATime(t *testing.T) {
	e := newTestEnv(t, nil)
	alice := e.token("alice", "Alice")
	id := e.create(alice, "a.bin", 1000)
	pr, pw := io.Pipe()
	first := make(chan int, 1)
	go func() {
		res, _ := e.put(alice, id, 0, pr)
		first <- res.StatusCode
	}()
	_, _ = pw.Write(randomBytes(t, 10))
	// Wait until the server holds the first chunk open.
	deadline := time.Now().Add(5 * time.Second)
	for !e.app.store.writing(id) {
		if time.Now().After(deadline) {
			t.Fatal("the first chunk never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	res, body := e.put(alice, id, 0, []byte("x"))
	if code, msg, _ := refusal(t, body); res.StatusCode != http.StatusConflict || code != schemas.CodeInvalidPayload || !strings.Contains(msg, "one at a time") {
		t.Errorf("concurrent chunk: %d %s, want 409", res.StatusCode, body)
	}
	_ = pw.Close()
	if s := <-first; s != http.StatusOK {
		t.Errorf("first chunk: %d", s)
	}
}

// Uploads are read no faster than the configured rate.
func TestUploadRate(t *testing.T) {
	const rate = 256 << 10
	e := newTestEnv(t, func(c *Config) { c.UploadRate = rate })
	alice := e.token("alice", "Alice")
	data := randomBytes(t, 384<<10)
	id := e.create(alice, "slow.bin", int64(len(data)))
	start := time.Now()
	if res, body := e.put(alice, id, 0, data); res.StatusCode != 200 {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
	// 64 KiB of burst, then 320 KiB at 256 KiB/s: 1.25 s.
	if took := time.Since(start); took < 1100*time.Millisecond || took > 10*time.Second {
		t.Errorf("384 KiB at %d B/s took %s, want about 1.25 s", rate, took)
	}
}

// Unfinished uploads left idle are forgotten when the next one is created.
func TestStaleUploadsSwept(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.MaxUpload = 1 << 20; c.StoreLimit = 1 << 20 })
	now := time.Now()
	e.app.store.mu.Lock()
	e.app.store.now = func() time.Time { return now }
	e.app.store.mu.Unlock()
	alice := e.token("alice", "Alice")
	stale := e.create(alice, "stale.bin", 1<<20)
	if res, body := e.do("POST", "/demo/uploads", alice, map[string]any{"name": "b", "size": 1}); res.StatusCode != http.StatusInsufficientStorage {
		t.Fatalf("store should be full: %d %s", res.StatusCode, body)
	}
	e.app.store.mu.Lock()
	now = now.Add(staleUpload + time.Second)
	e.app.store.mu.Unlock()
	e.create(alice, "fresh.bin", 1<<20)
	if res, body := e.put(alice, stale, 0, []byte("x")); res.StatusCode != http.StatusNotFound {
		t.Errorf("stale upload still there: %d %s", res.StatusCode, body)
	}
}

func TestCloseRemovesFiles(t *testing.T) {
	e := newTestEnv(t, nil)
	alice := e.token("alice", "Alice")
	e.create(alice, "a.bin", 10)
	dir := e.app.Dir()
	if err := e.app.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("upload folder still there after Close: %v", err)
	}
	res, body := e.do("POST", "/demo/uploads", alice, map[string]any{"name": "b", "size": 1})
	if code, _, _ := refusal(t, body); res.StatusCode != http.StatusServiceUnavailable || code != schemas.CodeUnavailable {
		t.Errorf("create after Close: %d %s", res.StatusCode, body)
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1 KiB", 1536: "1.5 KiB", 32 << 20: "32 MiB", 5 << 30: "5 GiB"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
