package browser

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/roomstream/roomstream/infra/testredis"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// installCommand is what makes the browser test runnable.
const installCommand = "cd e2e/browser && npm ci"

// chromiumPath returns Debian's chromium (or $ROOMSTREAM_TEST_CHROMIUM).
func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("ROOMSTREAM_TEST_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("chromium not found at %s: run `apt-get install -y chromium` (or set ROOMSTREAM_TEST_CHROMIUM); no browser is ever downloaded", p)
	}
	return p
}

func checkNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed: run `apt-get install -y nodejs npm` (node 20 or later), then `%s`", installCommand)
	}
	if _, err := os.Stat(filepath.Join("node_modules", "playwright-core", "package.json")); err != nil {
		t.Fatalf("playwright-core is not installed: run `%s`", installCommand)
	}
	return node
}

// TestDemoInBrowser runs demo.mjs: two users in one room in chromium,
// against `roomstream dev` with its embedded Redis. Bob's page goes
// through a proxy that the script can cut, to test recovery.
func TestDemoInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	chromium := chromiumPath(t)
	node := checkNode(t)
	bin := roomstreamBinary(t)
	artifacts, err := filepath.Abs("artifacts")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	dev, base := startProcess(t, bin, []string{"dev"},
		[]string{"ROOMSTREAM_HTTP_ADDR=127.0.0.1:0", "ROOMSTREAM_LOG_LEVEL=info"},
		regexp.MustCompile(`^\s+demo\s+(http://\S+?)/?\s`))
	t.Cleanup(func() { _ = os.WriteFile(filepath.Join(artifacts, "dev.log"), []byte(dev.Log()), 0o644) })
	waitReady(t, base+"/readyz")
	proxy := startCutProxy(t, strings.TrimPrefix(base, "http://"))
	cutURL := proxy.control(t)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "demo.mjs")
	cmd.Env = append(os.Environ(),
		"BASE_URL="+base,
		"BOB_URL="+proxy.URL(),
		"DROP_URL="+cutURL,
		"ARTIFACTS="+artifacts,
		"CHROMIUM="+chromium,
	)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("browser script failed (%v) after %s\n--- demo.mjs output ---\n%s\n--- roomstream dev log (last 40 lines) ---\n%s\nscreenshots and dev.log: %s",
			err, time.Since(start).Round(time.Millisecond), out, tailLines(dev.Log(), 40), artifacts)
	}
	t.Logf("demo.mjs passed in %s; screenshots in %s\n%s", time.Since(start).Round(time.Millisecond), artifacts, out)
	if !strings.Contains(string(out), "PASS") {
		t.Fatalf("demo.mjs exited 0 without PASS:\n%s", out)
	}
}

// TestConnectorDoesNotServeDemo: the token mint lets anyone be anyone, so
// `roomstream connector` must not serve the demo; `roomstream dev` does.
func TestConnectorDoesNotServeDemo(t *testing.T) {
	bin := roomstreamBinary(t)
	rdb := testredis.Start(t, nil)
	_, addr := startProcess(t, bin, []string{"connector"},
		[]string{"ROOMSTREAM_HTTP_ADDR=127.0.0.1:0", "ROOMSTREAM_REDIS_URL=" + rdb.URL(), "ROOMSTREAM_JWT_SECRET=connector-test-secret-0123456789"},
		regexp.MustCompile(`connector listening.* addr=(\S+)`))
	base := "http://" + addr
	waitReady(t, base+"/readyz")

	for _, c := range []struct{ method, path, body string }{
		{"GET", "/", ""},
		{"GET", "/assets/app.js", ""},
		{"POST", "/demo/token", `{"name":"Mallory"}`},
		{"POST", "/demo/uploads", `{"name":"a","size":1}`},
		{"GET", "/demo/files/x", ""},
	} {
		req, _ := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", c.method, c.path, err)
		}
		_ = res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("connector: %s %s = %d, want 404 (the demo must not be mounted)", c.method, c.path, res.StatusCode)
		}
	}
}
