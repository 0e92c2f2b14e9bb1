package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/roomstream/roomstream/connector/auth"
	"github.com/roomstream/roomstream/e2e/harness"
	"github.com/roomstream/roomstream/e2e/sioclient"
	"github.com/roomstream/roomstream/infra/testredis"
	"github.com/roomstream/roomstream/schemas"
)

const secret = "e2e-secret-0123456789abcdef"

// deployment is one Redis with connectors and workers as processes.
type deployment struct {
	t          *testing.T
	redis      *testredis.Server
	cluster    *testredis.Cluster
	env        harness.Env
	connectors []*harness.Proc
	workers    []*harness.Proc
}

// deploy starts redis-server (or a cluster), n connectors and m workers.
func deploy(t *testing.T, n, m int, cluster bool, extra ...string) *deployment {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	d := &deployment{t: t}
	url := ""
	if cluster {
		d.cluster = testredis.StartCluster(t)
		url = d.cluster.URL()
	} else {
		d.redis = testredis.Start(t, &testredis.Options{AOF: true})
		url = d.redis.URL()
	}
	d.env = harness.Env{
		"ROOMSTREAM_REDIS_URL": url, "ROOMSTREAM_JWT_SECRET": secret, "ROOMSTREAM_PARTITIONS": "8",
		"ROOMSTREAM_KEY_PREFIX": "e2e:", "ROOMSTREAM_LOG_LEVEL": "info",
		// Every test client connects from 127.0.0.1, at load-test rates.
		"ROOMSTREAM_MAX_CONNS_PER_IP": "0", "ROOMSTREAM_CONNECT_RATE": "0",
	}.With(extra...)
	for i := 0; i < m; i++ {
		d.addWorker()
	}
	for i := 0; i < n; i++ {
		d.addConnector()
	}
	d.waitPartitionsOwned()
	return d
}

func (d *deployment) addConnector() *harness.Proc {
	p := harness.StartConnector(d.t, fmt.Sprintf("conn%d", len(d.connectors)+1), d.env)
	d.connectors = append(d.connectors, p)
	return p
}

func (d *deployment) addWorker() *harness.Proc {
	p := harness.StartWorker(d.t, fmt.Sprintf("work%d", len(d.workers)+1), d.env)
	d.workers = append(d.workers, p)
	return p
}

// waitPartitionsOwned waits until the workers together own every
// partition, so that events are applied without waiting for leases.
func (d *deployment) waitPartitionsOwned() {
	d.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		owned := 0.0
		for _, w := range d.workers {
			if w.Running() {
				if v := w.Metric(context.Background(), "roomstream_worker_partitions_owned"); v > 0 {
					owned += v
				}
			}
		}
		if owned >= 8 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.t.Fatal("partitions not owned after 30s")
}

func token(t testing.TB, user, name string) string {
	t.Helper()
	tok, err := auth.Sign(secret, user, name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func dial(t testing.TB, base, user, name string) *sioclient.Client {
	t.Helper()
	c, err := sioclient.Dial(context.Background(), base, &sioclient.Options{Token: token(t, user, name)})
	if err != nil {
		t.Fatalf("dial %s as %s: %v", base, user, err)
	}
	t.Cleanup(func() { c.Drop() })
	return c
}

func timeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustAck(t testing.TB, c *sioclient.Client, event string, payload any) schemas.Ack {
	t.Helper()
	raw, err := c.EmitAck(timeout(t, 10*time.Second), event, payload)
	if err != nil {
		t.Fatalf("%s: %v", event, err)
	}
	var a schemas.Ack
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("%s ack %s: %v", event, raw, err)
	}
	if !a.OK {
		t.Fatalf("%s refused: %+v", event, a.Error)
	}
	return a
}

// waitFor returns the next event named name whose first argument contains
// every substring in has.
func waitFor(t testing.TB, c *sioclient.Client, name string, has ...string) sioclient.Event {
	t.Helper()
	return waitForWithin(t, 15*time.Second, c, name, has...)
}

// waitForWithin is waitFor with its own time limit.
func waitForWithin(t testing.TB, d time.Duration, c *sioclient.Client, name string, has ...string) sioclient.Event {
	t.Helper()
	ctx := timeout(t, d)
	for {
		ev, err := c.Wait(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		ok := true
		for _, h := range has {
			if !strings.Contains(string(ev.Args[0]), h) {
				ok = false
			}
		}
		if ok {
			return ev
		}
	}
}

func TestMain(m *testing.M) { harness.Main(m) }
