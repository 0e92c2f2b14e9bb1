package streams

import (
	"context"
	_ "embed"

	"github.com/redis/go-redis/v9"
)

var (
	//go:embed scripts/socket_claim.lua
	socketClaimSrc string
	socketClaim    = redis.NewScript(socketClaimSrc)
)

// Socket states kept in socket:{socketId}.
const (
	SocketLive   = "live"   // connected
	SocketHeld   = "held"   // dropped, in its rooms for the recovery window
	SocketClosed = "closed" // leaving its rooms
)

// ClaimSocket sets socket sid's connector to `to` and its state to state,
// if it is still on connector from. Exactly one of competing claims wins.
func (c *Client) ClaimSocket(ctx context.Context, sid, from, to, state string) (bool, error) {
	n, err := socketClaim.Run(ctx, c.rdb, []string{c.Keys.Socket(sid)}, from, to, state).Int64()
	return n == 1, err
}
