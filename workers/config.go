package workers

import (
	"fmt"
	"time"

	"github.com/roomstream/roomstream/streams"
)

// DefaultEmptyRoomTTL is EMPTY_ROOM_TTL's default (read from its tag,
// where every default is written: see streams.Defaults).
var DefaultEmptyRoomTTL = func() time.Duration {
	var c Config
	streams.Defaults(&c)
	return c.EmptyRoomTTL
}()

// Config configures a worker process.
type Config struct {
	streams.Config
	Limits
	FeedConfig

	HTTPAddr     string        `envconfig:"WORKER_HTTP_ADDR" default:":8081" desc:"address of the worker's /healthz, /readyz and /metrics"`
	WorkerID     string        `envconfig:"WORKER_ID" desc:"consumer name of this worker (generated when empty)"`
	LeaseTTL     time.Duration `envconfig:"LEASE_TTL" default:"5s" desc:"partition lease lifetime; a dead worker's partitions move after this"`
	ClaimMinIdle time.Duration `envconfig:"CLAIM_MIN_IDLE" default:"2s" desc:"how long a pending entry must be idle before another worker claims it"`
	MaxAttempts  int           `envconfig:"MAX_ATTEMPTS" default:"5" desc:"failed attempts after which an entry goes to the dead letters"`
	BatchSize    int64         `envconfig:"BATCH_SIZE" default:"100" desc:"entries read per partition at once"`
	LockGrace    time.Duration `envconfig:"LOCK_GRACE" default:"30s" desc:"how long a lock survives its holder leaving the room"`
	EmptyRoomTTL time.Duration `envconfig:"EMPTY_ROOM_TTL" default:"168h" desc:"how long an empty room's state is kept"`
	TrimInterval time.Duration `envconfig:"TRIM_INTERVAL" default:"30s" desc:"how often inbound streams are trimmed"`
	ReapInterval time.Duration `envconfig:"REAP_INTERVAL" default:"1s" desc:"how often connector heartbeats and orphaned locks are checked"`
	// ConnectorTimeout is the connectors' heartbeat TTL (same variable).
	ConnectorTimeout time.Duration `envconfig:"CONNECTOR_TIMEOUT" default:"10s" desc:"connectors' heartbeat TTL; a new janitor waits this long before declaring any connector dead"`
}

// Validate checks the configuration and names the variable at fault.
func (c *Config) Validate() error {
	if err := c.Config.Validate(); err != nil {
		return err
	}
	if err := c.Limits.Validate(); err != nil {
		return err
	}
	if err := c.FeedConfig.Validate(); err != nil {
		return err
	}
	switch {
	case c.LeaseTTL < 500*time.Millisecond:
		return fmt.Errorf("ROOMSTREAM_LEASE_TTL must be at least 500ms, got %s", c.LeaseTTL)
	case c.ClaimMinIdle <= 0:
		return fmt.Errorf("ROOMSTREAM_CLAIM_MIN_IDLE must be positive, got %s", c.ClaimMinIdle)
	case c.MaxAttempts < 1:
		return fmt.Errorf("ROOMSTREAM_MAX_ATTEMPTS must be at least 1, got %d", c.MaxAttempts)
	case c.BatchSize < 1 || c.BatchSize > 10000:
		return fmt.Errorf("ROOMSTREAM_BATCH_SIZE must be between 1 and 10000, got %d", c.BatchSize)
	case c.LockGrace < 0:
		return fmt.Errorf("ROOMSTREAM_LOCK_GRACE must not be negative, got %s", c.LockGrace)
	case c.EmptyRoomTTL < time.Minute:
		return fmt.Errorf("ROOMSTREAM_EMPTY_ROOM_TTL must be at least 1m, got %s", c.EmptyRoomTTL)
	case c.TrimInterval < time.Second:
		return fmt.Errorf("ROOMSTREAM_TRIM_INTERVAL must be at least 1s, got %s", c.TrimInterval)
	case c.ReapInterval < 100*time.Millisecond:
		return fmt.Errorf("ROOMSTREAM_REAP_INTERVAL must be at least 100ms, got %s", c.ReapInterval)
	}
	if c.WorkerID != "" && !validName(c.WorkerID) {
		return fmt.Errorf("ROOMSTREAM_WORKER_ID must be 1-64 letters, digits, '-' or '_', got %q", c.WorkerID)
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
