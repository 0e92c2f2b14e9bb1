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

	"github.com/roomstream/roomstream/e2e/harness"
	"github.com/roomstream/roomstream/infra/testredis"
)

func TestMain(m *testing.M) { harness.Main(m) }

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
	return node
}

func checkPlaywright(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join("node_modules", "playwright-core", "package.json")); err != nil {
		t.Fatalf("playwright-core is not installed: run `%s`", installCommand)
	}
}

// backends are the Redis servers each browser test runs `roomstream dev`
// on: its embedded Redis (what `go run . dev` gives a developer) and a
// real redis-server, so that the recovery paths the pages go through are
// proven on the real thing as well.
var backends = []string{"embedded", "redis-server"}

// TestDemoInBrowser runs demo.mjs: two users in one room in chromium,
// against `roomstream dev`, on each of the backends. The page uses the
// socket.io-client bundle with its default options: it starts with
// long-polling and ends on a WebSocket. Bob's page goes through a proxy
// that the script can cut, to test recovery.
func TestDemoInBrowser(t *testing.T) {
	runDemo(t, false)
}

// TestDemoInBrowserWebSocketRefused runs it once more behind an HTTP
// proxy that refuses WebSockets: both pages stay on long-polling.
func TestDemoInBrowserWebSocketRefused(t *testing.T) {
	runDemo(t, true)
}

func runDemo(t *testing.T, refuseWebSocket bool) {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) { runDemoOn(t, refuseWebSocket, backend) })
	}
}

func runDemoOn(t *testing.T, refuseWebSocket bool, backend string) {
	chromium := chromiumPath(t)
	node := checkNode(t)
	checkPlaywright(t)
	bin := roomstreamBinary(t)
	artifacts, err := filepath.Abs("artifacts")
	if err != nil {
		t.Fatal(err)
	}
	var extra []string
	expect := "websocket"
	leaveMs := "10000"
	if refuseWebSocket {
		artifacts = filepath.Join(artifacts, "websocket-refused")
		// A page closed while polling says no goodbye: the server sees its
		// poll dropped and holds the socket for the recovery window.
		extra = append(extra, "ROOMSTREAM_RECOVERY_WINDOW=5s")
		expect, leaveMs = "polling", "20000"
	}
	artifacts = filepath.Join(artifacts, backend)
	if backend == "redis-server" {
		extra = append(extra, "ROOMSTREAM_REDIS_URL="+testredis.Start(t, nil).URL())
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	dev, base := startDev(t, bin, extra...)
	t.Cleanup(func() { _ = os.WriteFile(filepath.Join(artifacts, "dev.log"), []byte(dev.Log()), 0o644) })
	aliceURL := base
	if refuseWebSocket {
		aliceURL = harness.StartHTTPBalancer(t, true, strings.TrimPrefix(base, "http://")).URL()
	}
	proxy := harness.StartProxy(t, strings.TrimPrefix(aliceURL, "http://"))
	cutURL := proxy.Control(t)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "demo.mjs")
	cmd.Env = append(os.Environ(),
		"BASE_URL="+aliceURL,
		"BOB_URL="+proxy.URL(),
		"DROP_URL="+cutURL,
		"ARTIFACTS="+artifacts,
		"CHROMIUM="+chromium,
		"EXPECT_TRANSPORT="+expect,
		"LEAVE_MS="+leaveMs,
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

// startDev starts `roomstream dev` on a free loopback port (with the
// embedded Redis unless env sets ROOMSTREAM_REDIS_URL) and returns it
// with its base URL once it is ready.
func startDev(t *testing.T, bin string, env ...string) (*process, string) {
	t.Helper()
	env = append([]string{"ROOMSTREAM_HTTP_ADDR=127.0.0.1:0", "ROOMSTREAM_LOG_LEVEL=info"}, env...)
	dev, base := startProcess(t, bin, []string{"dev"}, env, regexp.MustCompile(`^\s+demo\s+(http://\S+?)/?\s`))
	waitReady(t, base+"/readyz")
	return dev, base
}

// TestConnectorDoesNotServeDemo: the token mint lets anyone be anyone, so
// `roomstream connector` must not serve the demo; `roomstream dev` does.
func TestConnectorDoesNotServeDemo(t *testing.T) {
	bin := roomstreamBinary(t)
	rdb := testredis.Start(t, nil)
	_, addr := startProcess(t, bin, []string{"connector"},
		[]string{"ROOMSTREAM_HTTP_ADDR=127.0.0.1:0", "ROOMSTREAM_ADMIN_ADDR=127.0.0.1:0", "ROOMSTREAM_REDIS_URL=" + rdb.URL(), "ROOMSTREAM_JWT_SECRET=connector-test-secret-0123456789"},
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
