package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/roomstream/roomstream/e2e/harness"
	"github.com/roomstream/roomstream/infra/testredis"
)

// nodeReady fails the test with the command to run when Node or the npm
// packages of e2e/node are missing.
func nodeReady(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not installed: run `go tool task test` (it installs it), or `apt-get install -y nodejs npm`")
	}
	if _, err := os.Stat(filepath.Join("node", "node_modules", "socket.io-client")); err != nil {
		t.Fatal("socket.io-client is not installed: run `go tool task setup:node`, or `npm ci --prefix e2e/node`")
	}
	return node
}

// runDesignClient runs the design document's client code with the real
// socket.io-client against urlA and urlB.
func runDesignClient(t *testing.T, urlA, urlB string) {
	t.Helper()
	node := nodeReady(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "run-design.js", urlA, urlB, users.Token(t, "alice", "Alice"), users.Token(t, "bob", "Bob"), "design-room")
	cmd.Dir = "node"
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var report struct {
		OK       bool     `json:"ok"`
		Error    string   `json:"error"`
		Checks   []string `json:"checks"`
		BadToken string   `json:"badToken"`
		Alice    []string `json:"alice"`
	}
	if jerr := json.Unmarshal(stdout.Bytes(), &report); jerr != nil || err != nil || !report.OK {
		t.Fatalf("design client failed: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	want := "connected joined locked unlocked progress bad_token"
	if got := strings.Join(report.Checks, " "); got != want {
		t.Errorf("checks %q, want %q", got, want)
	}
	t.Logf("bad token surfaced as: %s", report.BadToken)
	t.Logf("alice's console: %q", report.Alice)
}

// TestDesignClientTwoConnectors runs the design's client code, unchanged,
// against two connectors and two workers sharing one Redis.
func TestDesignClientTwoConnectors(t *testing.T) {
	d := deploy(t, 2, 2, false)
	runDesignClient(t, d.connectors[0].URL(), d.connectors[1].URL())
}

// TestDesignClientDev runs it against `roomstream dev`: on its embedded
// Redis (what `go run . dev` gives a developer) and on a real redis-server
// (ROOMSTREAM_REDIS_URL), so that the paths the client exercises are
// proven on the real thing as well.
func TestDesignClientDev(t *testing.T) {
	nodeReady(t)
	for _, backend := range []string{"embedded", "redis-server"} {
		t.Run(backend, func(t *testing.T) {
			url := ""
			if backend == "redis-server" {
				url = testredis.Start(t, nil).URL()
			}
			dev := harness.StartDev(t, "dev", harness.Env{"ROOMSTREAM_JWT_SECRET": secret, "ROOMSTREAM_REDIS_URL": url})
			runDesignClient(t, dev.URL(), dev.URL())
			// The embedded Redis must serve every command the system
			// sends it: a command it does not know shows up as a
			// warning, not as a failure. Neither backend may cause one.
			for _, line := range strings.Split(dev.Logs(), "\n") {
				if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
					t.Errorf("roomstream dev complained: %s", line)
				}
			}
		})
	}
}
