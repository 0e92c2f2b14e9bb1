package browser

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
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

// TestDemoInBrowser runs demo.mjs: two users in one room in chromium,
// against `roomstream dev` with its embedded Redis. Bob's page goes
// through a proxy that the script can cut, to test recovery.
func TestDemoInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	chromium := chromiumPath(t)
	node := checkNode(t)
	checkPlaywright(t)
	bin := roomstreamBinary(t)
	artifacts, err := filepath.Abs("artifacts")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	dev, base := startDev(t, bin)
	t.Cleanup(func() { _ = os.WriteFile(filepath.Join(artifacts, "dev.log"), []byte(dev.Log()), 0o644) })
	proxy := harness.StartProxy(t, strings.TrimPrefix(base, "http://"))
	cutURL := proxy.Control(t)

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

// startDev starts `roomstream dev` on a free loopback port with the
// embedded Redis and returns it with its base URL once it is ready.
func startDev(t *testing.T, bin string, env ...string) (*process, string) {
	t.Helper()
	env = append([]string{"ROOMSTREAM_HTTP_ADDR=127.0.0.1:0", "ROOMSTREAM_LOG_LEVEL=info"}, env...)
	dev, base := startProcess(t, bin, []string{"dev"}, env, regexp.MustCompile(`^\s+demo\s+(http://\S+?)/?\s`))
	waitReady(t, base+"/readyz")
	return dev, base
}

// nodeWebSocketArgs returns the node flags that give it a WebSocket
// global (built in from node 22; behind a flag in node 20).
func nodeWebSocketArgs(t *testing.T, node string) []string {
	t.Helper()
	for _, args := range [][]string{nil, {"--experimental-websocket"}} {
		cmd := exec.Command(node, append(args, "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)")...)
		if cmd.Run() == nil {
			return args
		}
	}
	t.Fatalf("this node has no WebSocket, even with --experimental-websocket: install node 20.10 or later")
	return nil
}

// TestSioClient runs sio.test.mjs: the demo's own Socket.IO client in
// node, against roomstream dev with 300 ms pings (a pong may take 3 s, so
// a busy CI machine does not drop the socket), through a proxy that
// cuts connections, and against a port where nothing listens.
func TestSioClient(t *testing.T) {
	if testing.Short() {
		t.Skip("node test: skipped with -short")
	}
	node := checkNode(t)
	flags := nodeWebSocketArgs(t, node)
	bin := roomstreamBinary(t)
	dev, base := startDev(t, bin, "ROOMSTREAM_PING_INTERVAL=300ms", "ROOMSTREAM_PING_TIMEOUT=3s")
	proxy := harness.StartProxy(t, strings.TrimPrefix(base, "http://"))
	dead := "http://127.0.0.1:" + strconv.Itoa(testredis.FreePort(t))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append(flags, "--test", "--test-reporter=spec", "sio.test.mjs")...)
	cmd.Env = append(os.Environ(), "BASE_URL="+base, "BOB_URL="+proxy.URL(), "DROP_URL="+proxy.Control(t), "DEAD_URL="+dead)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sio.test.mjs failed (%v)\n--- output ---\n%s\n--- roomstream dev log (last 40 lines) ---\n%s", err, out, tailLines(dev.Log(), 40))
	}
	if strings.Contains(string(out), "# SKIP") || strings.Contains(string(out), "skipped") && !strings.Contains(string(out), "skipped 0") {
		t.Fatalf("sio.test.mjs skipped tests it should have run:\n%s", out)
	}
	t.Logf("sio.test.mjs passed\n%s", out)
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
