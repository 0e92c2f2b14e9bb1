package testredis

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of redis-server processes on loopback: three
// masters, each with a replica.
type Cluster struct {
	tb      testing.TB
	Masters []*Server
	Nodes   []*Server
}

// StartCluster starts 3 masters and 3 replicas and joins them with
// `redis-cli --cluster create`.
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		tb.Fatalf("redis-cli is not installed: run `go tool task test` (it installs it), or `apt-get install -y redis-tools`")
	}
	c := &Cluster{tb: tb}
	args := []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
		"--cluster-node-timeout", "2000", "--appendonly", "yes", "--appendfsync", "everysec",
		// Replicas sync at once (the default waits 5 s for more replicas),
		// so that a failover right after start loses nothing it should not.
		"--repl-diskless-sync-delay", "0"}
	for i := 0; i < 6; i++ {
		c.Nodes = append(c.Nodes, Start(tb, &Options{Args: args}))
	}
	create := []string{"--cluster", "create"}
	for _, n := range c.Nodes {
		create = append(create, n.Addr())
	}
	create = append(create, "--cluster-replicas", "1", "--cluster-yes")
	out, err := exec.Command(cli, create...).CombinedOutput()
	if err != nil {
		tb.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.waitOK(30 * time.Second)
	c.WaitReplicasSynced(30 * time.Second)
	c.refreshMasters()
	return c
}

// WaitReplicasSynced waits until every running replica's link to its
// master is up (its initial sync is done).
func (c *Cluster) WaitReplicasSynced(d time.Duration) {
	c.tb.Helper()
	deadline := time.Now().Add(d)
	for {
		synced := true
		for _, n := range c.Nodes {
			if n.cmd == nil {
				continue
			}
			cl := redis.NewClient(&redis.Options{Addr: n.Addr()})
			info, err := cl.Info(context.Background(), "replication").Result()
			_ = cl.Close()
			if err != nil || (strings.Contains(info, "role:slave") && !strings.Contains(info, "master_link_status:up")) {
				synced = false
				break
			}
		}
		if synced {
			return
		}
		if time.Now().After(deadline) {
			c.tb.Fatalf("replicas not in sync within %s", d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Rejoin starts a killed node again; it rejoins the cluster (as a replica
// of whoever took its slots) and the call returns once it is in sync.
func (c *Cluster) Rejoin(n *Server) {
	c.tb.Helper()
	n.Start()
	c.waitOK(30 * time.Second)
	c.WaitReplicasSynced(30 * time.Second)
	c.refreshMasters()
}

// Addrs lists every node as host:port.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.Addr())
	}
	return out
}

// URL is the ROOMSTREAM_REDIS_URL of the cluster (every node, comma
// separated).
func (c *Cluster) URL() string {
	var urls []string
	for _, n := range c.Nodes {
		urls = append(urls, n.URL())
	}
	return strings.Join(urls, ",")
}

// Client returns a cluster client, closed with the test.
func (c *Cluster) Client() *redis.ClusterClient {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	c.tb.Cleanup(func() { _ = cc.Close() })
	return cc
}

func (c *Cluster) waitOK(d time.Duration) {
	c.tb.Helper()
	deadline := time.Now().Add(d)
	for {
		ok := true
		for _, n := range c.Nodes {
			if n.cmd == nil {
				continue
			}
			cl := redis.NewClient(&redis.Options{Addr: n.Addr()})
			info, err := cl.ClusterInfo(context.Background()).Result()
			_ = cl.Close()
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				ok = false
				break
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.tb.Fatalf("cluster did not reach state ok within %s", d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// refreshMasters records which nodes are masters now.
func (c *Cluster) refreshMasters() {
	c.Masters = nil
	for _, n := range c.Nodes {
		if n.cmd == nil {
			continue
		}
		cl := redis.NewClient(&redis.Options{Addr: n.Addr()})
		role, err := cl.Do(context.Background(), "ROLE").Slice()
		_ = cl.Close()
		if err == nil && len(role) > 0 && role[0] == "master" {
			c.Masters = append(c.Masters, n)
		}
	}
}

// KillMasterAndFailover kills a master (SIGKILL) and waits until its
// replica has taken over and the cluster is ok again. It returns the
// killed node.
func (c *Cluster) KillMasterAndFailover(i int) (*Server, error) {
	c.tb.Helper()
	c.refreshMasters()
	if i >= len(c.Masters) {
		return nil, fmt.Errorf("no master %d", i)
	}
	victim := c.Masters[i]
	victim.Kill()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		c.refreshMasters()
		if len(c.Masters) == 3 {
			c.waitOK(30 * time.Second)
			return victim, nil
		}
	}
	return victim, fmt.Errorf("no replica took over from %s", victim.Addr())
}
