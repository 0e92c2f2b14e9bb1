package streams

import (
	"context"
	_ "embed"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	//go:embed scripts/zrem_due.lua
	zremDueSrc string
	zremDue    = redis.NewScript(zremDueSrc)
)

// Done removes members from schedule key unless they were rescheduled to
// a later time meanwhile. Callers act first and call Done after, so a crash
// in between repeats the action instead of losing it.
func (c *Client) Done(ctx context.Context, key string, now time.Time, members ...string) error {
	if len(members) == 0 {
		return nil
	}
	args := make([]any, 0, len(members)+1)
	args = append(args, now.UnixMilli())
	for _, m := range members {
		args = append(args, m)
	}
	return zremDue.Run(ctx, c.rdb, []string{key}, args...).Err()
}
