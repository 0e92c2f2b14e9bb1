package streams

import (
	"context"
	_ "embed"
	"errors"
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

// RenewLease extends a held lease; ErrLeaseLost when it is no longer held.
func (c *Client) RenewLease(ctx context.Context, p int, owner string, token int64, ttl time.Duration) error {
	return c.renew(ctx, c.Keys.Lease(p), owner, token, ttl)
}

// ReleaseLease gives a held lease up at once.
func (c *Client) ReleaseLease(ctx context.Context, p int, owner string, token int64) error {
	return leaseRelease.Run(ctx, c.rdb, []string{c.Keys.Lease(p)}, owner, token).Err()
}
