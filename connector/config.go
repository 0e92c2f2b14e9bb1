package connector

import (
	"fmt"
	"time"

	"github.com/roomstream/roomstream/streams"
)

// Defaults that tests and docs refer to (the Socket.IO reference values
// where there is one).
const (
	DefaultPingInterval   = 25 * time.Second
	DefaultPingTimeout    = 20 * time.Second
	DefaultConnectTimeout = 45 * time.Second
	DefaultMaxPayload     = 1_000_000
	DefaultHeartbeatTTL   = 10 * time.Second
)

// Config configures a connector process.
type Config struct {
	streams.Config

	HTTPAddr       string        `envconfig:"HTTP_ADDR" default:":8080" desc:"address the connector listens on (/socket.io/, /healthz, /readyz, /metrics)"`
	ConnectorID    string        `envconfig:"CONNECTOR_ID" desc:"name of this connector and its outbound stream (generated when empty)"`
	JWTSecret      string        `envconfig:"JWT_SECRET" desc:"HS256 secret that signs client tokens (required; dev makes one up)"`
	JWTIssuer      string        `envconfig:"JWT_ISSUER" desc:"required 'iss' claim (empty = not checked)"`
	JWTAudience    string        `envconfig:"JWT_AUDIENCE" desc:"required 'aud' claim (empty = not checked)"`
	JWTLeeway      time.Duration `envconfig:"JWT_LEEWAY" default:"5s" desc:"clock skew allowed when checking exp, nbf and iat"`
	PingInterval   time.Duration `envconfig:"PING_INTERVAL" default:"25s" desc:"Engine.IO pingInterval"`
	PingTimeout    time.Duration `envconfig:"PING_TIMEOUT" default:"20s" desc:"Engine.IO pingTimeout: a client that does not answer a ping within it is dropped"`
	ConnectTimeout time.Duration `envconfig:"CONNECT_TIMEOUT" default:"45s" desc:"time a client has to send its Socket.IO CONNECT"`
	AuthTimeout    time.Duration `envconfig:"AUTH_TIMEOUT" default:"30s" desc:"time a client connected without a token has to send 'authenticate'"`
	MaxPayload     int64         `envconfig:"MAX_PAYLOAD" default:"1000000" desc:"largest WebSocket message accepted, in bytes (larger: closed with 1009)"`
	RateLimit      float64       `envconfig:"RATE_LIMIT" default:"50" desc:"events per second one socket may send on average"`
	RateBurst      int           `envconfig:"RATE_BURST" default:"100" desc:"events one socket may send in a burst"`
	MaxRooms       int           `envconfig:"MAX_ROOMS" default:"100" desc:"rooms one socket may be in"`
	SendQueue      int           `envconfig:"SEND_QUEUE" default:"512" desc:"packets queued for one socket; a socket that falls further behind is disconnected"`
	HeartbeatTTL   time.Duration `envconfig:"CONNECTOR_TIMEOUT" default:"10s" desc:"lifetime of the connector's heartbeat key: workers declare it dead this long after its last beat"`
	DrainTimeout   time.Duration `envconfig:"DRAIN_TIMEOUT" default:"10s" desc:"time a stopping connector has to flush and close its sockets"`
	AllowedOrigins []string      `envconfig:"ALLOWED_ORIGINS" default:"*" desc:"Origin patterns browsers may connect from (comma-separated host patterns, * = any)"`
	APIKey         string        `envconfig:"API_KEY" desc:"bearer key of the server API at /api/v1/ (empty: the API is not served)"`
	APIAddr        string        `envconfig:"API_ADDR" desc:"address of the server API when it must not share HTTP_ADDR (empty: served on HTTP_ADDR)"`
	APIRevokeTTL   time.Duration `envconfig:"API_REVOKE_TTL" default:"720h" desc:"how long a token revocation of the server API lasts (longer than your tokens live)"`
	GCPercent      int           `envconfig:"GC_PERCENT" default:"50" desc:"Go garbage collector target (as GOGC, which wins when set): a connector's memory is mostly idle connections, and 50 holds them in about 15 KiB each instead of 18 at a little CPU"`
}

// Validate checks the configuration and names the variable at fault.
func (c *Config) Validate() error {
	if err := c.Config.Validate(); err != nil {
		return err
	}
	switch {
	case len(c.JWTSecret) < 16:
		return fmt.Errorf("ROOMSTREAM_JWT_SECRET must be set to at least 16 characters")
	case c.PingInterval < 100*time.Millisecond:
		return fmt.Errorf("ROOMSTREAM_PING_INTERVAL must be at least 100ms, got %s", c.PingInterval)
	case c.PingTimeout < 100*time.Millisecond:
		return fmt.Errorf("ROOMSTREAM_PING_TIMEOUT must be at least 100ms, got %s", c.PingTimeout)
	case c.ConnectTimeout < time.Second:
		return fmt.Errorf("ROOMSTREAM_CONNECT_TIMEOUT must be at least 1s, got %s", c.ConnectTimeout)
	case c.AuthTimeout < time.Second:
		return fmt.Errorf("ROOMSTREAM_AUTH_TIMEOUT must be at least 1s, got %s", c.AuthTimeout)
	case c.MaxPayload < 1024 || c.MaxPayload > 100<<20:
		return fmt.Errorf("ROOMSTREAM_MAX_PAYLOAD must be between 1024 and %d, got %d", 100<<20, c.MaxPayload)
	case c.RateLimit <= 0:
		return fmt.Errorf("ROOMSTREAM_RATE_LIMIT must be positive, got %g", c.RateLimit)
	case c.RateBurst < 1:
		return fmt.Errorf("ROOMSTREAM_RATE_BURST must be at least 1, got %d", c.RateBurst)
	case c.MaxRooms < 1:
		return fmt.Errorf("ROOMSTREAM_MAX_ROOMS must be at least 1, got %d", c.MaxRooms)
	case c.SendQueue < 8:
		return fmt.Errorf("ROOMSTREAM_SEND_QUEUE must be at least 8, got %d", c.SendQueue)
	case c.HeartbeatTTL < time.Second:
		return fmt.Errorf("ROOMSTREAM_CONNECTOR_TIMEOUT must be at least 1s, got %s", c.HeartbeatTTL)
	case c.DrainTimeout < 0:
		return fmt.Errorf("ROOMSTREAM_DRAIN_TIMEOUT must not be negative, got %s", c.DrainTimeout)
	case c.APIKey != "" && len(c.APIKey) < 16:
		return fmt.Errorf("ROOMSTREAM_API_KEY must be at least 16 characters when set")
	case c.APIAddr != "" && c.APIKey == "":
		return fmt.Errorf("ROOMSTREAM_API_ADDR is set but ROOMSTREAM_API_KEY is not: the API is served only with a key")
	case c.APIRevokeTTL < time.Minute:
		return fmt.Errorf("ROOMSTREAM_API_REVOKE_TTL must be at least 1m, got %s", c.APIRevokeTTL)
	case c.GCPercent != -1 && c.GCPercent < 10:
		return fmt.Errorf("ROOMSTREAM_GC_PERCENT must be at least 10 (or -1: collector off), got %d", c.GCPercent)
	}
	if c.ConnectorID != "" && !validName(c.ConnectorID) {
		return fmt.Errorf("ROOMSTREAM_CONNECTOR_ID must be 1-64 letters, digits, '-' or '_', got %q", c.ConnectorID)
	}
	return nil
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
