package demo

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestPage(t *testing.T) {
	e := newTestEnv(t, nil)
	res, body := e.do("GET", "/", "", nil)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	// Every file the page refers to is served, with a type browsers accept.
	refs := regexp.MustCompile(`(?:src|href)="(/assets/[^"]+)"`).FindAllStringSubmatch(string(body), -1)
	if len(refs) < 2 {
		t.Fatalf("the page refers to %d assets, want the script and the style sheet", len(refs))
	}
	want := map[string]string{".js": "text/javascript", ".css": "text/css"}
	for _, m := range refs {
		res, b := e.do("GET", m[1], "", nil)
		ext := m[1][strings.LastIndex(m[1], "."):]
		if res.StatusCode != 200 || len(b) == 0 || !strings.HasPrefix(res.Header.Get("Content-Type"), want[ext]) {
			t.Errorf("GET %s = %d, %d bytes, %s", m[1], res.StatusCode, len(b), res.Header.Get("Content-Type"))
		}
	}
	// app.js imports the socket.io-client bundle, which must be served
	// too, its license beside it.
	for _, p := range []string{"/assets/vendor/socket.io.esm.min.js", "/assets/vendor/LICENSE"} {
		if res, b := e.do("GET", p, "", nil); res.StatusCode != 200 || len(b) == 0 {
			t.Errorf("GET %s = %d", p, res.StatusCode)
		}
	}
	for _, p := range []string{"/assets/", "/assets/nope.js", "/index.html", "/demo/"} {
		if res, _ := e.do("GET", p, "", nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, res.StatusCode)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (&Config{}).Validate(); err == nil {
		t.Error("zero config accepted")
	}
	d := DefaultConfig()
	if err := d.Validate(); err != nil {
		t.Errorf("defaults refused: %v", err)
	}
	for _, c := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.MaxUpload = 0 }, "ROOMSTREAM_DEMO_MAX_UPLOAD"},
		{func(c *Config) { c.StoreLimit = c.MaxUpload - 1 }, "ROOMSTREAM_DEMO_STORE_LIMIT"},
		{func(c *Config) { c.UploadRate = -1 }, "ROOMSTREAM_DEMO_UPLOAD_RATE"},
		{func(c *Config) { c.UploadRate = 10 }, "ROOMSTREAM_DEMO_UPLOAD_RATE"},
		{func(c *Config) { c.TokenTTL = 0 }, "ROOMSTREAM_DEMO_TOKEN_TTL"},
	} {
		cfg := DefaultConfig()
		c.mod(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate() = %v, want an error naming %s", err, c.want)
		}
	}
}

// TestBundleIsTheNpmPackage: the embedded socket.io-client bundle and its
// license are the npm package's files, byte for byte (the package that
// e2e/node's lock file pins; refresh with `go tool task demo:bundle`).
func TestBundleIsTheNpmPackage(t *testing.T) {
	pkg := filepath.Join("..", "..", "e2e", "node", "node_modules", "socket.io-client")
	if _, err := os.Stat(pkg); err != nil {
		if testing.Short() {
			t.Skip("socket.io-client is not installed (go tool task setup:node)")
		}
		t.Fatal("socket.io-client is not installed: run `go tool task setup:node`, or `npm ci --prefix e2e/node`")
	}
	for embedded, original := range map[string]string{
		"static/vendor/socket.io.esm.min.js": filepath.Join(pkg, "dist", "socket.io.esm.min.js"),
		"static/vendor/LICENSE":              filepath.Join(pkg, "LICENSE"),
	} {
		got, err := static.ReadFile(embedded)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(original)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s: run `go tool task demo:bundle`", embedded, original)
		}
	}
	if !strings.Contains(string(mustRead(t, "static/app.js")), `from './vendor/socket.io.esm.min.js'`) {
		t.Error("app.js does not import the bundle")
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := static.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
