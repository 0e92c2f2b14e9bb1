package connector

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/roomstream/roomstream/connector/auth"
	"github.com/roomstream/roomstream/connector/netguard"
	"github.com/roomstream/roomstream/streams"
)

// DefaultMaxPayload is MAX_PAYLOAD's default, as a constant for the tests
// that size frames by it (TestDefaults in infra/cli holds it equal to the
// tag, where the defaults are written). It fits the design's largest
// message (a CONNECT carrying an 8 KiB token, a join-room with its
// payload) several times over; Socket.IO's own default of 1 MB lets every
// socket make the connector buffer a megabyte for nothing.
const DefaultMaxPayload = 64 << 10

// AuthConfig is auth.Config under a name of its own: Config embeds it
// beside streams.Config (so the variables keep their names), and two
// embedded fields cannot both be called Config.
type AuthConfig = auth.Config

// Config configures a connector process.
type Config struct {
	streams.Config

	HTTPAddr        string        `envconfig:"HTTP_ADDR" default:":8080" desc:"address the connector listens on (/socket.io/, /healthz, /readyz, /metrics)"`
	ConnectorID     string        `envconfig:"CONNECTOR_ID" desc:"name of this connector and its outbound stream (generated when empty)"`
	AuthConfig                    // JWT_* and JWKS_* (here: -h lists the variables in field order)
	PingInterval    time.Duration `envconfig:"PING_INTERVAL" default:"25s" desc:"Engine.IO pingInterval"`
	PingTimeout     time.Duration `envconfig:"PING_TIMEOUT" default:"20s" desc:"Engine.IO pingTimeout: a client that does not answer a ping within it is dropped"`
	ConnectTimeout  time.Duration `envconfig:"CONNECT_TIMEOUT" default:"45s" desc:"time a client has to send its Socket.IO CONNECT"`
	AuthTimeout     time.Duration `envconfig:"AUTH_TIMEOUT" default:"30s" desc:"time a client connected without a token has to send 'authenticate'"`
	MaxPayload      int64         `envconfig:"MAX_PAYLOAD" default:"65536" desc:"largest WebSocket message accepted, in bytes (larger: closed with 1009)"`
	RateLimit       float64       `envconfig:"RATE_LIMIT" default:"50" desc:"events per second one socket may send on average"`
	RateBurst       int           `envconfig:"RATE_BURST" default:"100" desc:"events one socket may send in a burst"`
	MaxRooms        int           `envconfig:"MAX_ROOMS" default:"100" desc:"rooms one socket may be in"`
	SendQueue       int           `envconfig:"SEND_QUEUE" default:"512" desc:"packets queued for one socket; a socket that falls further behind is disconnected"`
	SendQueueBytes  int           `envconfig:"SEND_QUEUE_BYTES" default:"1048576" desc:"bytes queued for one socket (frames not yet taken by the kernel); a socket past it is disconnected"`
	WriteTimeout    time.Duration `envconfig:"WRITE_TIMEOUT" default:"10s" desc:"longest one write to a client may block, and longest an HTTP response may take (a held poll: PING_INTERVAL more); a client that stops reading is disconnected after it"`
	ReadTimeout     time.Duration `envconfig:"READ_TIMEOUT" default:"10s" desc:"longest a client may take to send one HTTP request, headers and body (a polling POST, a handshake); a slower one is answered 408 or its connection closed"`
	IdleTimeout     time.Duration `envconfig:"IDLE_TIMEOUT" default:"2m" desc:"how long a kept-alive HTTP connection may wait for its next request (keep it longer than the idle timeout of a load balancer in front)"`
	MaxRefusals     int           `envconfig:"MAX_REFUSALS" default:"50" desc:"events refused in a row (invalid, unknown, unauthorized, rate limited) after which the socket is disconnected"`
	TokenGrace      time.Duration `envconfig:"TOKEN_GRACE" default:"30s" desc:"time a live socket whose token expired has to send 'authenticate' with a fresh token before it is disconnected"`
	MaxConns        int           `envconfig:"MAX_CONNS" default:"50000" desc:"Engine.IO sessions (WebSocket or polling) this connector holds at most (handshakes past it get 503; 0 = no limit)"`
	MaxConnsPerIP   int           `envconfig:"MAX_CONNS_PER_IP" default:"1000" desc:"open HTTP connections of one client address (IPv6: one /64) this connector holds at most, whatever they carry: a WebSocket is one, a polling client two (429 past it; 0 = no limit)"`
	MaxConnsPerUser int           `envconfig:"MAX_CONNS_PER_USER" default:"20" desc:"sockets one user may have across all connectors, held ones included (0 = no limit)"`
	MaxRoomsPerUser int           `envconfig:"MAX_ROOMS_PER_USER" default:"200" desc:"rooms one user may be in across all its sockets, joins not applied yet included (0 = no limit)"`
	RoomCreateRate  int           `envconfig:"ROOM_CREATE_RATE" default:"30" desc:"rooms one user's joins may create per minute (a join of a room id that has no state); past it: too_many_new_rooms (0 = no limit). An empty room lives 7 days"`
	ConnectRate     float64       `envconfig:"CONNECT_RATE" default:"50" desc:"Engine.IO handshakes (WebSocket or polling) per second one client address (IPv6: one /64) may open on average (burst: 2x; 429 past it; 0 = no limit)"`
	TrustedProxies  []string      `envconfig:"TRUSTED_PROXIES" desc:"comma-separated CIDRs or addresses of the load balancers whose X-Forwarded-For or PROXY protocol header names the client (empty: none; every client is its peer address, and PROXY headers are refused)"`
	MaxBacklog      int64         `envconfig:"MAX_BACKLOG" default:"100000" desc:"inbound entries a partition may have waiting for workers; past it new events are refused with 'unavailable' (0 = no limit)"`
	AdminAddr       string        `envconfig:"ADMIN_ADDR" default:"127.0.0.1:9464" desc:"address of /metrics and (with ROOMSTREAM_PPROF=true) /debug/pprof/, kept off the public port; 'off' = not served"`
	HeartbeatTTL    time.Duration `envconfig:"CONNECTOR_TIMEOUT" default:"10s" desc:"lifetime of the connector's heartbeat key: workers declare it dead this long after its last beat"`
	DrainTimeout    time.Duration `envconfig:"DRAIN_TIMEOUT" default:"10s" desc:"time a stopping connector has to flush and close its sockets"`
	AdvertiseAddr   string        `envconfig:"ADVERTISE_ADDR" desc:"host:port at which other connectors reach this one: a polling request that reaches another connector is forwarded here (default: the listening address, with this machine's hostname when it names no host)"`
	PollBuffer      int64         `envconfig:"POLL_BUFFER" default:"4194304" desc:"bytes queued for one HTTP long-polling session between two GETs (and at most SEND_QUEUE packets); a session that falls further behind is closed and can recover"`
	AllowedOrigins  []string      `envconfig:"ALLOWED_ORIGINS" default:"*" desc:"Origin patterns browsers may connect from (comma-separated host patterns, * = any)"`
	// GCPercent stays at 50 rather than Go's 100: under load 100 halves
	// the collector's share of the connector's CPU but barely moves its
	// cost per delivery, while every idle connection, most of what a
	// connector holds, costs more memory.
	GCPercent int `envconfig:"GC_PERCENT" default:"50" desc:"Go garbage collector target (as GOGC, which wins when set): a connector's memory is mostly idle connections, which 50 holds in less memory at a little CPU"`

	// Recovery reads.
	RecoveryMaxEntries int `envconfig:"RECOVERY_MAX_ENTRIES" default:"20000" desc:"outbound entries one recovery reads at most to find what its socket missed; a socket that missed more gets a fresh session (not recovered), as when its recovery window passed"`

	// Room access: who may join which room (access.go).
	RoomAccess            string        `envconfig:"ROOM_ACCESS" default:"open" desc:"who may join which room: open (any authenticated user, any room), claims (the rooms the token's rooms claim lists: ids, or prefixes ending in *), proxy (ROOM_ACCESS_URL decides); refused joins get forbidden"`
	RoomAccessURL         string        `envconfig:"ROOM_ACCESS_URL" desc:"with ROOM_ACCESS=proxy: URL a connector POSTs {userId, roomId, claims} to before a join; 200 with {\"allow\": true} admits, any other answer refuses (forbidden), no answer or a 5xx gives unavailable"`
	RoomAccessTimeout     time.Duration `envconfig:"ROOM_ACCESS_TIMEOUT" default:"1s" desc:"with ROOM_ACCESS=proxy: how long a join waits for ROOM_ACCESS_URL (then unavailable)"`
	RoomAccessCache       time.Duration `envconfig:"ROOM_ACCESS_CACHE" default:"10s" desc:"with ROOM_ACCESS=proxy: how long an answer is reused for the same user and room (0 = not cached)"`
	RoomAccessCacheSize   int           `envconfig:"ROOM_ACCESS_CACHE_SIZE" default:"10000" desc:"with ROOM_ACCESS=proxy: answers a connector keeps at most"`
	RoomAccessConcurrency int           `envconfig:"ROOM_ACCESS_CONCURRENCY" default:"64" desc:"with ROOM_ACCESS=proxy: requests to ROOM_ACCESS_URL one connector has in flight at most; a join finding none free within ROOM_ACCESS_TIMEOUT gets unavailable"`
}

// Validate checks the configuration and names the variable at fault.
func (c *Config) Validate() error {
	if err := c.Config.Validate(); err != nil {
		return err
	}
	if err := c.AuthConfig.Validate(); err != nil {
		return err
	}
	switch {
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
	case c.PollBuffer < c.MaxPayload:
		return fmt.Errorf("ROOMSTREAM_POLL_BUFFER must be at least ROOMSTREAM_MAX_PAYLOAD (%d), got %d", c.MaxPayload, c.PollBuffer)
	case c.SendQueue < 8:
		return fmt.Errorf("ROOMSTREAM_SEND_QUEUE must be at least 8, got %d", c.SendQueue)
	case c.SendQueueBytes < 4096:
		return fmt.Errorf("ROOMSTREAM_SEND_QUEUE_BYTES must be at least 4096, got %d", c.SendQueueBytes)
	case c.WriteTimeout < 100*time.Millisecond:
		return fmt.Errorf("ROOMSTREAM_WRITE_TIMEOUT must be at least 100ms, got %s", c.WriteTimeout)
	case c.ReadTimeout < 100*time.Millisecond:
		return fmt.Errorf("ROOMSTREAM_READ_TIMEOUT must be at least 100ms, got %s", c.ReadTimeout)
	case c.IdleTimeout < 100*time.Millisecond:
		return fmt.Errorf("ROOMSTREAM_IDLE_TIMEOUT must be at least 100ms, got %s", c.IdleTimeout)
	case c.MaxRefusals < 1:
		return fmt.Errorf("ROOMSTREAM_MAX_REFUSALS must be at least 1, got %d", c.MaxRefusals)
	case c.TokenGrace < 0:
		return fmt.Errorf("ROOMSTREAM_TOKEN_GRACE must not be negative, got %s", c.TokenGrace)
	case c.MaxConns < 0 || c.MaxConnsPerIP < 0 || c.MaxConnsPerUser < 0 || c.MaxRoomsPerUser < 0:
		return fmt.Errorf("ROOMSTREAM_MAX_CONNS, MAX_CONNS_PER_IP, MAX_CONNS_PER_USER and MAX_ROOMS_PER_USER must not be negative (0 = no limit), got %d, %d, %d, %d",
			c.MaxConns, c.MaxConnsPerIP, c.MaxConnsPerUser, c.MaxRoomsPerUser)
	case c.RoomCreateRate < 0:
		return fmt.Errorf("ROOMSTREAM_ROOM_CREATE_RATE must not be negative (0 = no limit), got %d", c.RoomCreateRate)
	case c.ConnectRate < 0:
		return fmt.Errorf("ROOMSTREAM_CONNECT_RATE must not be negative (0 = no limit), got %g", c.ConnectRate)
	case c.MaxBacklog < 0:
		return fmt.Errorf("ROOMSTREAM_MAX_BACKLOG must not be negative, got %d", c.MaxBacklog)
	case c.HeartbeatTTL < time.Second:
		return fmt.Errorf("ROOMSTREAM_CONNECTOR_TIMEOUT must be at least 1s, got %s", c.HeartbeatTTL)
	case c.DrainTimeout < 0:
		return fmt.Errorf("ROOMSTREAM_DRAIN_TIMEOUT must not be negative, got %s", c.DrainTimeout)
	case c.RecoveryMaxEntries < 100:
		return fmt.Errorf("ROOMSTREAM_RECOVERY_MAX_ENTRIES must be at least 100, got %d", c.RecoveryMaxEntries)
	case c.GCPercent != -1 && c.GCPercent < 10:
		return fmt.Errorf("ROOMSTREAM_GC_PERCENT must be at least 10 (or -1: collector off), got %d", c.GCPercent)
	}
	if _, err := netguard.ParseTrust(c.TrustedProxies); err != nil {
		return fmt.Errorf("ROOMSTREAM_TRUSTED_PROXIES: %w", err)
	}
	if err := c.validateAccess(); err != nil {
		return err
	}
	if c.ConnectorID != "" && !validName(c.ConnectorID) {
		return fmt.Errorf("ROOMSTREAM_CONNECTOR_ID must be 1-64 letters, digits, '-' or '_', got %q", c.ConnectorID)
	}
	return nil
}

// validateAccess checks the ROOM_ACCESS settings.
func (c *Config) validateAccess() error {
	switch c.RoomAccess {
	case AccessOpen, AccessClaims, "": // "": a Config built in code, open
		if c.RoomAccessURL != "" {
			return fmt.Errorf("ROOMSTREAM_ROOM_ACCESS_URL is set but ROOMSTREAM_ROOM_ACCESS is %q: set it to proxy, or unset the URL", c.RoomAccess)
		}
		return nil
	case AccessProxy:
	default:
		return fmt.Errorf("ROOMSTREAM_ROOM_ACCESS must be open, claims or proxy, got %q", c.RoomAccess)
	}
	u, err := url.Parse(c.RoomAccessURL)
	switch {
	case c.RoomAccessURL == "":
		return errors.New("ROOMSTREAM_ROOM_ACCESS=proxy needs ROOMSTREAM_ROOM_ACCESS_URL")
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return fmt.Errorf("ROOMSTREAM_ROOM_ACCESS_URL must be an https:// (or http://) URL, got %q", c.RoomAccessURL)
	case c.RoomAccessTimeout < 10*time.Millisecond || c.RoomAccessTimeout > time.Minute:
		return fmt.Errorf("ROOMSTREAM_ROOM_ACCESS_TIMEOUT must be between 10ms and 1m, got %s", c.RoomAccessTimeout)
	case c.RoomAccessCache < 0:
		return fmt.Errorf("ROOMSTREAM_ROOM_ACCESS_CACHE must not be negative (0 = not cached), got %s", c.RoomAccessCache)
	case c.RoomAccessCacheSize < 1:
		return fmt.Errorf("ROOMSTREAM_ROOM_ACCESS_CACHE_SIZE must be at least 1, got %d", c.RoomAccessCacheSize)
	case c.RoomAccessConcurrency < 1:
		return fmt.Errorf("ROOMSTREAM_ROOM_ACCESS_CONCURRENCY must be at least 1, got %d", c.RoomAccessConcurrency)
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
