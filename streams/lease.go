package streams

import (
	"context"
	_ "embed"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrLeaseLost is returned when a partition lease expired or was taken.
var ErrLeaseLost = errors.New("streams: lease lost")

var (
	//go:embed scripts/lease_acquire.lua
	leaseAcquireSrc string
	//go:embed scripts/lease_renew.lua
	leaseRenewSrc string
	//go:embed scripts/lease_release.lua
	leaseReleaseSrc string

	leaseAcquire = redis.NewScript(leaseAcquireSrc)
	leaseRenew   = redis.NewScript(leaseRenewSrc)
	leaseRelease = redis.NewScript(leaseReleaseSrc)
)

// AcquireLease takes partition p's lease for owner when it is free and
// returns its fencing token; 0 means another owner holds it. Tokens only
// grow, so state written under a newer lease refuses writes from an older
// one.
func (c *Client) AcquireLease(ctx context.Context, p int, owner string, ttl time.Duration) (int64, error) {
	return c.acquire(ctx, c.Keys.Lease(p), c.Keys.Epoch(p), owner, ttl)
}

func (c *Client) acquire(ctx context.Context, lease, epoch, owner string, ttl time.Duration) (int64, error) {
	return leaseAcquire.Run(ctx, c.rdb, []string{lease, epoch}, owner, ttl.Milliseconds()).Int64()
}

func (c *Client) renew(ctx context.Context, lease, owner string, token int64, ttl time.Duration) error {
	n, err := leaseRenew.Run(ctx, c.rdb, []string{lease}, owner, token, ttl.Milliseconds()).Int64()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrLeaseLost
	}
	return nil
}

// AcquireJanitor takes the janitor lease (one worker at a time runs the
// reaper, trimming and lock expiry); 0 means another worker holds it.
func (c *Client) AcquireJanitor(ctx context.Context, owner string, ttl time.Duration) (int64, error) {
	return c.acquire(ctx, c.Keys.Janitor(), c.Keys.JanitorEpoch(), owner, ttl)
}

// RenewJanitor extends the janitor lease; ErrLeaseLost when gone.
func (c *Client) RenewJanitor(ctx context.Context, owner string, token int64, ttl time.Duration) error {
	return c.renew(ctx, c.Keys.Janitor(), owner, token, ttl)
}

// ReleaseJanitor gives the janitor lease up.
func (c *Client) ReleaseJanitor(ctx context.Context, owner string, token int64) error {
	return leaseRelease.Run(ctx, c.rdb, []string{c.Keys.Janitor()}, owner, token).Err()
}

// RenewLeases extends the leases of several partitions held by owner
// (partition -> token) in one round trip. The result holds, for each
// partition, nil (renewed), ErrLeaseLost or the error of the call.
func (c *Client) RenewLeases(ctx context.Context, owner string, tokens map[int]int64, ttl time.Duration) map[int]error {
	out := make(map[int]error, len(tokens))
	for attempt := 0; attempt < 2; attempt++ {
		cmds := make(map[int]*redis.Cmd, len(tokens))
		_, _ = c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for part, token := range tokens {
				cmds[part] = leaseRenew.EvalSha(ctx, p, []string{c.Keys.Lease(part)}, owner, token, ttl.Milliseconds())
			}
			return nil
		})
		missing := false
		for part, cmd := range cmds {
			n, err := cmd.Int64()
			switch {
			case err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT"):
				missing = true
				out[part] = err
			case err != nil:
				out[part] = err
			case n == 0:
				out[part] = ErrLeaseLost
			default:
				out[part] = nil
			}
		}
		if !missing || attempt > 0 {
			break
		}
		// First use, or a Redis that lost its scripts: load and renew
		// again (renewing twice is harmless).
		if err := leaseRenew.Load(ctx, c.rdb).Err(); err != nil {
			break
		}
	}
	return out
}

// ReleaseLease gives a held lease up at once.
func (c *Client) ReleaseLease(ctx context.Context, p int, owner string, token int64) error {
	return leaseRelease.Run(ctx, c.rdb, []string{c.Keys.Lease(p)}, owner, token).Err()
}

// LeaseHolder returns the owner and token of partition p's lease, or an
// empty owner when it is free.
func (c *Client) LeaseHolder(ctx context.Context, p int) (string, int64, error) {
	v, err := c.rdb.Get(ctx, c.Keys.Lease(p)).Result()
	if errors.Is(err, redis.Nil) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, err
	}
	i := strings.LastIndexByte(v, ' ')
	if i < 0 {
		return v, 0, nil
	}
	tok, _ := strconv.ParseInt(v[i+1:], 10, 64)
	return v[:i], tok, nil
}
