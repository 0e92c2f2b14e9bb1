package streams

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Revoke refuses, from now on, every token of user issued at or before at
// (to the second: a JWT's iat has no finer precision), for ttl: connectors
// check it at connect, authenticate and recovery. A later revocation
// moves the mark forward, never back.
func (c *Client) Revoke(ctx context.Context, user string, at time.Time, ttl time.Duration) error {
	key := c.Keys.UserRevoked(user)
	ms := at.UnixMilli()
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		// SET GT is Redis 7.4+; keep the larger mark with a compare.
		p.Eval(ctx, `local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`, []string{key}, ms, ttl.Milliseconds())
		return nil
	})
	return err
}

// Revoked reports whether a token of user issued at iat has been revoked
// (Revoke). A token without iat (zero) counts as issued before any
// revocation.
func (c *Client) Revoked(ctx context.Context, user string, iat time.Time) (bool, error) {
	v, err := c.rdb.Get(ctx, c.Keys.UserRevoked(user)).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return true, nil // a mark we cannot read: refuse rather than guess
	}
	if iat.IsZero() {
		return true, nil
	}
	// iat has whole seconds: a token of the revocation's second may have
	// been issued before it.
	return iat.Unix() <= ms/1000, nil
}
