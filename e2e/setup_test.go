package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/roomstream/roomstream/e2e/harness"
	"github.com/roomstream/roomstream/e2e/testkit"
	"github.com/roomstream/roomstream/infra/testredis"
)

const secret = "e2e-secret-0123456789abcdef"

// users signs the tests' tokens with the deployment's secret and dials as
// them.
var users = testkit.Auth{Secret: secret}

// processDeployment is one Redis (standalone, or a Redis Cluster) with
// connectors and workers running as real processes (package harness),
// which tests crash, stop and add to.
type processDeployment struct {
	t          *testing.T
	redis      *testredis.Server
	cluster    *testredis.Cluster
	env        harness.Env
	connectors []*harness.Proc
	workers    []*harness.Proc
	// bin is the roomstream binary the processes run ("": this build's).
	bin string
}

// deploy starts redis-server (or a cluster), n connectors and m workers.
func deploy(t *testing.T, n, m int, cluster bool, extra ...string) *processDeployment {
	t.Helper()
	return deployOf(t, "", n, m, cluster, extra...)
}

// deployOf is deploy with processes running the binary bin ("": this
// build's).
func deployOf(t *testing.T, bin string, n, m int, cluster bool, extra ...string) *processDeployment {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	d := &processDeployment{t: t, bin: bin}
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

func (d *processDeployment) addConnector() *harness.Proc {
	p := harness.StartConnectorWith(d.t, d.binary(), fmt.Sprintf("conn%d", len(d.connectors)+1), d.env)
	d.connectors = append(d.connectors, p)
	return p
}

func (d *processDeployment) addWorker() *harness.Proc {
	p := harness.StartWorkerWith(d.t, d.binary(), fmt.Sprintf("work%d", len(d.workers)+1), d.env)
	d.workers = append(d.workers, p)
	return p
}

// binary is the roomstream binary the deployment's processes run.
func (d *processDeployment) binary() string {
	if d.bin != "" {
		return d.bin
	}
	return harness.Binary(d.t)
}

// waitPartitionsOwned waits until the workers together own every
// partition, so that events are applied without waiting for leases.
func (d *processDeployment) waitPartitionsOwned() {
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

func TestMain(m *testing.M) { harness.Main(m) }
