package containers_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/roomstream/roomstream/e2e/containers"
	"github.com/roomstream/roomstream/streams"
	"github.com/roomstream/roomstream/workers"
)

// skipReason is why the suite cannot run here; required means it must
// run anyway (CI, or ROOMSTREAM_E2E=1), so a missing engine fails it.
var (
	skipReason string
	setupErr   error
	required   = os.Getenv("CI") == "true" || os.Getenv("ROOMSTREAM_E2E") == "1"
)

func TestMain(m *testing.M) {
	flag.Parse()
	// The reaper (ryuk) image cannot be pulled without a registry; the
	// cluster removes its containers itself.
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
		os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
	if !testing.Verbose() || os.Getenv("ROOMSTREAM_E2E_DOCKER_LOG") == "" {
		tclog.SetDefault(quiet{})
	}
	switch {
	case testing.Short():
		skipReason = "-short mode"
	default:
		if err := containers.DockerAvailable(); err != nil {
			skipReason = fmt.Sprintf("no Docker engine reachable (%v); "+
				"start one with `dockerd --bridge=none --iptables=false --storage-driver=vfs &` (see infra/docker/build-local.sh)", err)
			break
		}
		start := time.Now()
		if err := containers.RemoveLeftovers(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: removing leftover containers: %v\n", err)
		}
		if err := containers.BuildImages(); err != nil {
			setupErr = err
		} else if err := containers.EnsureNodeModules(); err != nil {
			setupErr = err
		}
		fmt.Fprintf(os.Stderr, "e2e: images %s and %s ready in %s\n", containers.RoomstreamImage(), containers.RedisImage(), time.Since(start).Round(time.Millisecond))
	}
	os.Exit(m.Run())
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}

// need skips the test when the suite cannot run here, except where it is
// required.
func need(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		if required && !testing.Short() {
			t.Fatalf("e2e container suite cannot run: %s; CI=true or ROOMSTREAM_E2E=1 requires it", skipReason)
		}
		t.Skipf("e2e container suite skipped: %s", skipReason)
	}
	if setupErr != nil {
		t.Fatal(setupErr)
	}
}

// owners returns how many partitions each live worker holds a lease on.
func owners(c *containers.Cluster) map[string]int {
	out := map[string]int{}
	for p := 0; p < c.Partitions(); p++ {
		v, _ := c.RDB().Get(context.Background(), fmt.Sprintf("in:{%d}:lease", p)).Result()
		for _, w := range c.Workers() {
			if strings.Contains(v, w.Name) {
				out[w.Name]++
			}
		}
	}
	return out
}

// minAcked is the fewest events acknowledged to one client of tr.
func (tr *traffic) minAcked() int {
	least := -1
	for _, p := range tr.ps {
		if n := p.AckedCount(); least < 0 || n < least {
			least = n
		}
	}
	return least
}

// defaultLeaseTTL is ROOMSTREAM_LEASE_TTL's default (its tag), which the
// containers run with.
var defaultLeaseTTL = func() time.Duration {
	var c workers.Config
	streams.Defaults(&c)
	return c.LeaseTTL
}()
