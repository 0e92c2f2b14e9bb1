package api

import (
	"fmt"
	"time"

	"github.com/roomstream/roomstream/streams"
)

// Config configures the server API as a connector process serves it
// (infra/cli mounts it beside /socket.io/).
type Config struct {
	Key  string `envconfig:"API_KEY" desc:"bearer key of the server API at /api/v1/ (empty: the API is not served)"`
	Addr string `envconfig:"API_ADDR" desc:"address of the server API when it must not share HTTP_ADDR (empty: served on HTTP_ADDR)"`
	RevokeConfig
}

// RevokeConfig is the API setting that the operators' commands (rooms,
// users) share: they revoke tokens with the API's own code without
// serving it, so they need no key or address.
type RevokeConfig struct {
	RevokeTTL time.Duration `envconfig:"API_REVOKE_TTL" default:"720h" desc:"how long a token revocation (server API, users disconnect -revoke) lasts; longer than your tokens live"`
}

// DefaultRevokeTTL is API_REVOKE_TTL's default, read from its tag: the
// lifetime of a revocation when Options sets none.
var DefaultRevokeTTL = func() time.Duration {
	var c RevokeConfig
	streams.Defaults(&c)
	return c.RevokeTTL
}()

// Validate checks the configuration and names the variable at fault.
func (c *Config) Validate() error {
	switch {
	case c.Key != "" && len(c.Key) < 16:
		return fmt.Errorf("ROOMSTREAM_API_KEY must be at least 16 characters when set")
	case c.Addr != "" && c.Key == "":
		return fmt.Errorf("ROOMSTREAM_API_ADDR is set but ROOMSTREAM_API_KEY is not: the API is served only with a key")
	case c.RevokeTTL < time.Minute:
		return fmt.Errorf("ROOMSTREAM_API_REVOKE_TTL must be at least 1m, got %s", c.RevokeTTL)
	}
	return nil
}
