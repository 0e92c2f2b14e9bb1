// Package containers runs roomstream as real containers for end-to-end
// tests: one Redis, any number of connectors and workers, each in its own
// container with host networking on its own loopback port. Tests start,
// stop, kill and add containers while real Socket.IO clients talk to the
// connectors. No reaper container is used: the cluster removes every
// container it started when the test ends, failed or not, and a later run
// removes what a crashed run left behind.
package containers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/redis/go-redis/v9"
	tc "github.com/testcontainers/testcontainers-go"

	"github.com/roomstream/roomstream/connector/auth"
	"github.com/roomstream/roomstream/infra/ports"
)

// Labels put on every container, so that leftovers of a crashed run can be
// found and removed.
const (
	labelSuite = "io.roomstream.e2e"
	labelOwner = "io.roomstream.e2e.pid"
)

// Secret signs the test tokens.
const Secret = "e2e-containers-secret-0123456789"

// Kind of a process.
type Kind string

const (
	KindRedis     Kind = "redis"
	KindConnector Kind = "connector"
	KindWorker    Kind = "worker"
)

// Proc is one container of the cluster.
type Proc struct {
	Kind Kind
	Name string // container name, also the connector or worker id
	Port int    // its loopback port (HTTP, or Redis)
	ctr  tc.Container

	mu   sync.Mutex
	live bool
}

// Addr is 127.0.0.1:port.
func (p *Proc) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.Port)) }

// URL is the base URL of a connector or worker.
func (p *Proc) URL() string { return "http://" + p.Addr() }

// Live reports whether the harness considers the container running.
func (p *Proc) Live() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.live
}

func (p *Proc) setLive(v bool) {
	p.mu.Lock()
	p.live = v
	p.mu.Unlock()
}

// Options of a cluster.
type Options struct {
	// Partitions is ROOMSTREAM_PARTITIONS (default 8).
	Partitions int
	// Env is added to every roomstream container's environment.
	Env map[string]string
	// RedisArgs are extra redis-server arguments.
	RedisArgs []string
}

// Cluster is one Redis and the roomstream containers around it.
type Cluster struct {
	t     testing.TB
	opts  Options
	prov  *tc.DockerProvider
	Redis *Proc
	rdb   *redis.Client
	start time.Time

	mu    sync.Mutex
	procs []*Proc
	n     map[Kind]int
}

// Start starts Redis (with AOF) for a new cluster. Every container is
// removed when the test ends.
func Start(t testing.TB, opts *Options) *Cluster {
	t.Helper()
	if opts == nil {
		opts = &Options{}
	}
	if opts.Partitions == 0 {
		opts.Partitions = 8
	}
	prov, err := provider()
	if err != nil {
		t.Fatalf("docker provider: %v", err)
	}
	c := &Cluster{t: t, opts: *opts, prov: prov, n: map[Kind]int{}, start: time.Now()}
	t.Cleanup(c.cleanup)
	port := freePort(t)
	args := []string{"redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--appendonly", "yes", "--appendfsync", "always", "--save", "", "--dir", "/data"}
	args = append(args, opts.RedisArgs...)
	c.Redis = c.run(KindRedis, port, RedisImage(), args, nil)
	c.rdb = redis.NewClient(&redis.Options{Addr: c.Redis.Addr(), MaxRetries: -1})
	c.waitRedis()
	return c
}

// provider returns a Docker provider that never creates a bridge network:
// every container uses the host's network.
func provider() (*tc.DockerProvider, error) {
	return tc.NewDockerProvider(tc.WithDefaultBridgeNetwork("host"))
}

// RDB is a client of the cluster's Redis, for checks.
func (c *Cluster) RDB() *redis.Client { return c.rdb }

// Partitions is the number of inbound partitions.
func (c *Cluster) Partitions() int { return c.opts.Partitions }

// AddConnector starts one more connector and waits until it is ready.
func (c *Cluster) AddConnector() *Proc {
	c.t.Helper()
	port := freePort(c.t)
	name := c.name(KindConnector)
	env := c.env(map[string]string{"ROOMSTREAM_CONNECTOR_ID": name, "ROOMSTREAM_HTTP_ADDR": fmt.Sprintf("127.0.0.1:%d", port),
		"ROOMSTREAM_ADMIN_ADDR": fmt.Sprintf("127.0.0.1:%d", freePort(c.t))})
	p := c.runNamed(KindConnector, name, port, RoomstreamImage(), []string{"connector"}, env)
	c.waitReady(p)
	return p
}

// AddWorker starts one more worker and waits until it is ready.
func (c *Cluster) AddWorker() *Proc {
	c.t.Helper()
	port := freePort(c.t)
	name := c.name(KindWorker)
	env := c.env(map[string]string{"ROOMSTREAM_WORKER_ID": name, "ROOMSTREAM_WORKER_HTTP_ADDR": fmt.Sprintf("127.0.0.1:%d", port)})
	p := c.runNamed(KindWorker, name, port, RoomstreamImage(), []string{"worker"}, env)
	c.waitReady(p)
	return p
}

// Connectors returns the live connectors.
func (c *Cluster) Connectors() []*Proc { return c.live(KindConnector) }

// Workers returns the live workers.
func (c *Cluster) Workers() []*Proc { return c.live(KindWorker) }

func (c *Cluster) live(k Kind) []*Proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Proc
	for _, p := range c.procs {
		if p.Kind == k && p.Live() {
			out = append(out, p)
		}
	}
	return out
}

// Kill kills a container with SIGKILL: the process gets no chance to clean
// up, as in a crash or an OOM kill.
func (c *Cluster) Kill(p *Proc) {
	c.t.Helper()
	p.setLive(false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.prov.Client().ContainerKill(ctx, p.ctr.GetContainerID(), client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		c.t.Fatalf("kill %s: %v", p.Name, err)
	}
	c.logf("killed %s", p.Name)
}

// Stop stops a container gracefully (SIGTERM, then SIGKILL after 15 s).
func (c *Cluster) Stop(p *Proc) {
	c.t.Helper()
	p.setLive(false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	timeout := 15 * time.Second
	if err := p.ctr.Stop(ctx, &timeout); err != nil {
		c.t.Fatalf("stop %s: %v", p.Name, err)
	}
	c.logf("stopped %s", p.Name)
}

// RestartRedis kills the Redis container (SIGKILL) and starts the same
// container again: it comes back on the same port with the data of its
// append-only file.
func (c *Cluster) RestartRedis(down time.Duration) {
	c.t.Helper()
	c.Kill(c.Redis)
	time.Sleep(down)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Redis.ctr.Start(ctx); err != nil {
		c.t.Fatalf("start redis again: %v", err)
	}
	c.Redis.setLive(true)
	c.waitRedis()
	c.logf("redis is back")
}

// WaitPartitionsOwned waits until every partition has a lease owner.
func (c *Cluster) WaitPartitionsOwned() {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		owned := 0
		for p := 0; p < c.opts.Partitions; p++ {
			n, err := c.rdb.Exists(context.Background(), fmt.Sprintf("in:{%d}:lease", p)).Result()
			if err == nil && n == 1 {
				owned++
			}
		}
		if owned == c.opts.Partitions {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%d of %d partitions have an owner after 60s", owned, c.opts.Partitions)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Token signs a token for user.
func (c *Cluster) Token(user, name string) string {
	tok, err := auth.Sign(Secret, user, name, time.Hour)
	if err != nil {
		c.t.Fatal(err)
	}
	return tok
}

func (c *Cluster) logf(format string, args ...any) {
	c.t.Logf("[%6.2fs] "+format, append([]any{time.Since(c.start).Seconds()}, args...)...)
}

func (c *Cluster) env(extra map[string]string) map[string]string {
	env := map[string]string{
		"ROOMSTREAM_REDIS_URL":  "redis://" + c.Redis.Addr(),
		"ROOMSTREAM_JWT_SECRET": Secret,
		"ROOMSTREAM_PARTITIONS": strconv.Itoa(c.opts.Partitions),
		"ROOMSTREAM_LOG_LEVEL":  "info",
		// Every test client connects from 127.0.0.1, at load-test rates.
		"ROOMSTREAM_MAX_CONNS_PER_IP": "0",
		"ROOMSTREAM_CONNECT_RATE":     "0",
	}
	for k, v := range c.opts.Env {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

func (c *Cluster) name(k Kind) string {
	c.mu.Lock()
	c.n[k]++
	n := c.n[k]
	c.mu.Unlock()
	test := unsafeName.ReplaceAllString(c.t.Name(), "_")
	if len(test) > 24 {
		test = test[len(test)-24:]
	}
	return fmt.Sprintf("rs-%d-%s-%s%d", os.Getpid(), strings.Trim(test, "_-"), k, n)
}

func (c *Cluster) run(k Kind, port int, image string, cmd []string, env map[string]string) *Proc {
	return c.runNamed(k, c.name(k), port, image, cmd, env)
}

func (c *Cluster) runNamed(k Kind, name string, port int, image string, cmd []string, env map[string]string) *Proc {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req := tc.ContainerRequest{
		Image: image,
		Name:  name,
		Cmd:   cmd,
		Env:   env,
		Labels: map[string]string{
			labelSuite: "1",
			labelOwner: strconv.Itoa(os.Getpid()),
		},
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.NetworkMode = "host"
		},
	}
	ctr, err := c.prov.CreateContainer(ctx, req)
	p := &Proc{Kind: k, Name: name, Port: port, ctr: ctr}
	if ctr != nil {
		c.mu.Lock()
		c.procs = append(c.procs, p)
		c.mu.Unlock()
	}
	if err != nil {
		c.t.Fatalf("create %s from %s: %v", name, image, err)
	}
	if err := ctr.Start(ctx); err != nil {
		c.t.Fatalf("start %s: %v", name, err)
	}
	p.setLive(true)
	c.logf("started %s on port %d", name, port)
	return p
}

func (c *Cluster) waitRedis() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("redis not answering after 30s: %v\n%s", err, c.tail(c.Redis, 30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitReady polls /readyz until it answers 200; a container that exits
// first fails the test with its log.
func (c *Cluster) waitReady(p *Proc) {
	c.t.Helper()
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := hc.Get(p.URL() + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				c.logf("%s ready", p.Name)
				return
			}
		}
		st, serr := p.ctr.State(context.Background())
		if serr == nil && !st.Running {
			c.t.Fatalf("%s exited (code %d) before it was ready:\n%s", p.Name, st.ExitCode, c.tail(p, 40))
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s not ready after 60s: %v\n%s", p.Name, err, c.tail(p, 40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Logs returns the container's output so far.
func (c *Cluster) Logs(p *Proc) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := p.ctr.Logs(ctx)
	if err != nil {
		return fmt.Sprintf("(no logs: %v)", err)
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	return string(b)
}

func (c *Cluster) tail(p *Proc, n int) string {
	lines := strings.Split(strings.TrimRight(c.Logs(p), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "--- " + p.Name + " ---\n" + strings.Join(lines, "\n")
}

// cleanup keeps the logs of a failed test (artifacts/<test>/) and removes
// every container.
func (c *Cluster) cleanup() {
	c.mu.Lock()
	procs := append([]*Proc(nil), c.procs...)
	c.mu.Unlock()
	if c.rdb != nil {
		_ = c.rdb.Close()
	}
	keep := c.t.Failed() || os.Getenv("ROOMSTREAM_E2E_LOGS") != ""
	if keep {
		dir := filepath.Join("artifacts", unsafeName.ReplaceAllString(c.t.Name(), "_"))
		_ = os.MkdirAll(dir, 0o755)
		for _, p := range procs {
			_ = os.WriteFile(filepath.Join(dir, p.Name+".log"), []byte(c.Logs(p)), 0o644)
		}
		abs, _ := filepath.Abs(dir)
		c.t.Logf("container logs kept in %s", abs)
	}
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := p.ctr.Terminate(ctx, tc.StopTimeout(2*time.Second)); err != nil {
				c.t.Errorf("remove %s: %v", p.Name, err)
			}
		}()
	}
	wg.Wait()
}

// RemoveLeftovers removes containers of this suite whose test process is
// gone (a run that was killed before its cleanup).
func RemoveLeftovers() error {
	prov, err := provider()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cli := prov.Client()
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", labelSuite)})
	if err != nil {
		return err
	}
	var errs []error
	for _, ctr := range list.Items {
		pid, _ := strconv.Atoi(ctr.Labels[labelOwner])
		if pid > 0 && processAlive(pid) {
			continue
		}
		if _, err := cli.ContainerRemove(ctx, ctr.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// freePort returns a loopback port that was free a moment ago, below the
// ephemeral range so that no outgoing connection takes it before the
// container binds it (see package ports).
func freePort(t testing.TB) int {
	t.Helper()
	p, err := ports.Free(0)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
