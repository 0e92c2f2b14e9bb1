package streams

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// readNew reads up to count new entries of partition p as consumer, the
// way a worker's shared read does.
func readNew(t *testing.T, c *Client, p int, consumer string, count int64) ([]redis.XMessage, error) {
	t.Helper()
	res, err := c.ReadRound(context.Background(), c.Redis(), Round{Consumer: consumer, New: []int{p}, Count: count, Block: time.Second})
	return res.Entries[p], err
}
