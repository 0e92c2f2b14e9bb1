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
	var results func() (map[int]error, bool)
	_, _ = c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		results = c.queueRenewals(ctx, p, owner, tokens, ttl)
		return nil
	})
	return c.renewed(ctx, results, owner, tokens, ttl)
}

// queueRenewals queues the renewal of owner's leases on p; the function
// it returns reads their outcomes once p ran (missing: Redis lacked the
// script).
func (c *Client) queueRenewals(ctx context.Context, p redis.Pipeliner, owner string, tokens map[int]int64, ttl time.Duration) func() (map[int]error, bool) {
	cmds := make(map[int]*redis.Cmd, len(tokens))
	for part, token := range tokens {
		cmds[part] = leaseRenew.EvalSha(ctx, p, []string{c.Keys.Lease(part)}, owner, token, ttl.Milliseconds())
	}
	return func() (map[int]error, bool) {
		out := make(map[int]error, len(cmds))
		missing := false
		for part, cmd := range cmds {
			n, err := cmd.Int64()
			switch {
			case err != nil:
				missing = missing || strings.HasPrefix(err.Error(), "NOSCRIPT")
				out[part] = err
			case n == 0:
				out[part] = ErrLeaseLost
			default:
				out[part] = nil
			}
		}
		return out, missing
	}
}

// renewed reads queued renewals; when Redis lacked the script (first use,
// or a Redis that lost its scripts) it loads it and renews again in a
// round trip of their own (renewing twice is harmless).
func (c *Client) renewed(ctx context.Context, results func() (map[int]error, bool), owner string, tokens map[int]int64, ttl time.Duration) map[int]error {
	out, missing := results()
	if !missing {
		return out
	}
	if err := leaseRenew.Load(ctx, c.rdb).Err(); err != nil {
		return out
	}
	_, _ = c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		results = c.queueRenewals(ctx, p, owner, tokens, ttl)
		return nil
	})
	out, _ = results()
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

// JanitorView is what one janitor round trip found.
type JanitorView struct {
	// Renewed: the janitor lease is still this owner's.
	Renewed bool
	// Connectors are the registered connectors; Dead those of the known
	// ones (see JanitorRound) still registered whose heartbeat expired;
	// OrphanLocks the rooms whose lock holder left long enough ago;
	// GoneConnectors the connectors whose streams are due for deletion.
	Connectors, Dead, OrphanLocks, GoneConnectors []string
}

// JanitorRound renews the janitor lease of owner and reads what the
// janitor's chores need, in one round trip: the registered connectors,
// whether the heartbeats of known (the connectors of the previous round)
// are there, and the first limit locks and gone connectors due at now.
func (c *Client) JanitorRound(ctx context.Context, owner string, token int64, ttl time.Duration, now time.Time, limit int64, known []string) (JanitorView, error) {
	var v JanitorView
	var renew *redis.Cmd
	var conns, locks, gone *redis.StringSliceCmd
	beats := make([]*redis.IntCmd, len(known))
	due := &redis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(now.UnixMilli(), 10), Count: limit}
	_, _ = c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		renew = leaseRenew.EvalSha(ctx, p, []string{c.Keys.Janitor()}, owner, token, ttl.Milliseconds())
		for i, id := range known {
			beats[i] = p.Exists(ctx, c.Keys.Connector(id))
		}
		conns = p.SMembers(ctx, c.Keys.Connectors())
		locks = p.ZRangeByScore(ctx, c.Keys.OrphanLocks(), due)
		gone = p.ZRangeByScore(ctx, c.Keys.GoneConnectors(), due)
		return nil
	})
	n, err := renew.Int64()
	if err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
		// First use, or a Redis that lost its scripts: this renewal
		// loads it.
		err = c.RenewJanitor(ctx, owner, token, ttl)
		n = 1
		if errors.Is(err, ErrLeaseLost) {
			n, err = 0, nil
		}
	}
	if err != nil {
		return v, err
	}
	v.Renewed = n == 1
	for _, cmd := range []*redis.StringSliceCmd{conns, locks, gone} {
		if err := cmd.Err(); err != nil {
			return v, err
		}
	}
	v.Connectors, v.OrphanLocks, v.GoneConnectors = conns.Val(), locks.Val(), gone.Val()
	registered := make(map[string]bool, len(v.Connectors))
	for _, id := range v.Connectors {
		registered[id] = true
	}
	for i, id := range known {
		// Read before the set: a connector whose beat is missing and that
		// is registered still is dead (one that registers again beats
		// first).
		if n, err := beats[i].Result(); err == nil && n == 0 && registered[id] {
			v.Dead = append(v.Dead, id)
		}
	}
	return v, nil
}
