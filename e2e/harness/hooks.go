package harness

import (
	"strconv"
	"testing"

	"github.com/roomstream/roomstream/infra/testredis"
)

// StartHooks starts `roomstream hooks` (the webhook deliverer of the
// applied-events feed) and waits until it is ready.
func StartHooks(tb testing.TB, name string, env Env) *Proc {
	tb.Helper()
	p := &Proc{tb: tb, Name: name, Kind: "hooks", Port: testredis.FreePort(tb), bin: Binary(tb)}
	p.env = env.With("ROOMSTREAM_HOOKS_HTTP_ADDR", "127.0.0.1:"+strconv.Itoa(p.Port), "ROOMSTREAM_HOOKS_ID", name)
	p.start()
	return p
}
