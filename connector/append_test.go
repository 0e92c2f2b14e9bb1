package connector

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/streams"
)

// replyErr is an error reply from Redis, as go-redis returns it.
type replyErr string

func (e replyErr) Error() string { return string(e) }
func (replyErr) RedisError()     {}

func TestTemporary(t *testing.T) {
	var _ redis.Error = replyErr("")
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{context.DeadlineExceeded, false},
		{context.Canceled, false},
		{redis.ErrClosed, false},
		{io.EOF, true},
		{&net.OpError{Op: "dial", Err: fmt.Errorf("connection refused")}, true},
		{fmt.Errorf("append: %w", streams.ErrNotDurable), true},
		{replyErr("LOADING Redis is loading the dataset in memory"), true},
		{replyErr("CLUSTERDOWN The cluster is down"), true},
		{replyErr("READONLY You can't write against a read only replica."), true},
		{replyErr("TRYAGAIN Multiple keys request during rehashing of slot"), true},
		{replyErr("WRONGTYPE Operation against a key holding the wrong kind of value"), false},
		{replyErr("OOM command not allowed when used memory > 'maxmemory'."), false},
	} {
		if got := temporary(c.err); got != c.want {
			t.Errorf("temporary(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
