package demo

import (
	"net/http"
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
	// app.js imports sio.js, which must be served too.
	if res, _ := e.do("GET", "/assets/sio.js", "", nil); res.StatusCode != 200 {
		t.Errorf("GET /assets/sio.js = %d", res.StatusCode)
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
