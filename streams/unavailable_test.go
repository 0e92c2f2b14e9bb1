package streams

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/redis/go-redis/v9"
)

type replyErr string

func (e replyErr) Error() string { return string(e) }
func (replyErr) RedisError()     {}

func TestIsUnavailable(t *testing.T) {
	var _ redis.Error = replyErr("")
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{redis.Nil, false},
		{context.DeadlineExceeded, true},
		{fmt.Errorf("apply: %w", context.DeadlineExceeded), true},
		{io.EOF, true},
		{fmt.Errorf("append: %w", ErrNotDurable), true},
		{replyErr("LOADING Redis is loading the dataset in memory"), true},
		{replyErr("BUSY Redis is busy running a script"), true},
		{replyErr("NOREPLICAS Not enough good replicas to write."), true},
		{replyErr("MOVED 3999 127.0.0.1:6381"), true},
		{replyErr("BUSYKEY Target key name already exists."), false},
		{replyErr("WRONGTYPE Operation against a key holding the wrong kind of value"), false},
		{replyErr("OOM command not allowed when used memory > 'maxmemory'."), false},
	} {
		if got := IsUnavailable(c.err); got != c.want {
			t.Errorf("IsUnavailable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
