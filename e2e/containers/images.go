package containers

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

// Default image names: what infra/docker/build-local.sh builds.
const (
	DefaultRoomstreamImage = "roomstream:dev"
	DefaultRedisImage      = "roomstream-redis:dev"
)

// RoomstreamImage is the roomstream image the suite runs:
// $ROOMSTREAM_IMAGE, or roomstream:dev built from this checkout.
func RoomstreamImage() string { return envOr("ROOMSTREAM_IMAGE", DefaultRoomstreamImage) }

// RedisImage is the Redis image: $REDIS_IMAGE (redis:7 on a machine with
// a registry), or roomstream-redis:dev built from the host's redis-server.
func RedisImage() string { return envOr("REDIS_IMAGE", DefaultRedisImage) }

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// RepoRoot is the module's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// BuildImages builds the images the suite needs with
// infra/docker/build-local.sh: the roomstream image from this checkout
// (always, so that tests never run a stale binary) unless $ROOMSTREAM_IMAGE
// names one, and the Redis image unless $REDIS_IMAGE names one.
func BuildImages() error {
	var what []string
	if os.Getenv("ROOMSTREAM_IMAGE") == "" {
		what = append(what, "roomstream")
	}
	if os.Getenv("REDIS_IMAGE") == "" {
		what = append(what, "redis")
	}
	for _, w := range what {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		cmd := exec.CommandContext(ctx, "bash", filepath.Join(RepoRoot(), "infra", "docker", "build-local.sh"), w)
		cmd.Dir = RepoRoot()
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			return fmt.Errorf("build-local.sh %s: %v\n%s", w, err, out)
		}
	}
	return nil
}

// DockerAvailable reports whether a Docker engine answers and the docker
// CLI (which build-local.sh uses) is installed.
func DockerAvailable() error {
	if _, err := exec.LookPath(envOr("DOCKER", "docker")); err != nil {
		return fmt.Errorf("docker CLI not found: %w", err)
	}
	prov, err := provider()
	if err != nil {
		return err
	}
	defer prov.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return prov.Health(ctx)
}

func processAlive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}
