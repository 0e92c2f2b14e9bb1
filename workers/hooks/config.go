package hooks

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/roomstream/roomstream/streams"
)

// Config configures a hooks process.
type Config struct {
	streams.Config

	HTTPAddr    string        `envconfig:"HOOKS_HTTP_ADDR" default:":8082" desc:"address of the hooks process's /healthz, /readyz and /metrics"`
	HooksID     string        `envconfig:"HOOKS_ID" desc:"name of this hooks process (generated when empty)"`
	URL         string        `envconfig:"WEBHOOK_URL" desc:"where every feed event is POSTed (required)"`
	Secret      string        `envconfig:"WEBHOOK_SECRET" desc:"signing secret in its whsec_<base64> form (required; roomstream hooks -new-secret prints one)"`
	Timeout     time.Duration `envconfig:"WEBHOOK_TIMEOUT" default:"10s" desc:"how long one delivery may take; a slower answer counts as a failure and is retried"`
	MaxAttempts int           `envconfig:"WEBHOOK_MAX_ATTEMPTS" default:"8" desc:"deliveries of one event before it goes to the webhook dead letters"`
	Backoff     time.Duration `envconfig:"WEBHOOK_BACKOFF" default:"1s" desc:"wait before the first retry of an event; it doubles with every attempt"`
	BackoffMax  time.Duration `envconfig:"WEBHOOK_BACKOFF_MAX" default:"5m" desc:"longest wait between two attempts"`
	Events      []string      `envconfig:"WEBHOOK_EVENTS" desc:"comma-separated event types to deliver, a trailing * matching a prefix (empty: every event of the feed)"`
	Concurrency int           `envconfig:"WEBHOOK_CONCURRENCY" default:"16" desc:"deliveries in flight at once per hooks process (one per room at most)"`
	BatchSize   int64         `envconfig:"WEBHOOK_BATCH_SIZE" default:"100" desc:"feed entries read per partition at once"`
	MaxQueued   int           `envconfig:"WEBHOOK_MAX_QUEUED" default:"10000" desc:"events read and not delivered yet per partition, at most (waiting behind a room's retries)"`
	LeaseTTL    time.Duration `envconfig:"LEASE_TTL" default:"5s" desc:"feed partition lease lifetime; a dead hooks process's partitions move after this"`
}

// SecretPrefix starts a signing secret in its Standard Webhooks form.
const SecretPrefix = "whsec_"

// Validate checks the configuration and names the variable at fault.
func (c *Config) Validate() error {
	if err := c.Config.Validate(); err != nil {
		return err
	}
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		return fmt.Errorf("ROOMSTREAM_WEBHOOK_URL is required")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("ROOMSTREAM_WEBHOOK_URL must be an http:// or https:// URL, got %q", c.URL)
	}
	key, ok := strings.CutPrefix(c.Secret, SecretPrefix)
	if b, err := base64.StdEncoding.DecodeString(key); !ok || err != nil || len(b) < 24 || len(b) > 64 {
		return fmt.Errorf("ROOMSTREAM_WEBHOOK_SECRET must be %s followed by 24 to 64 bytes in base64 (roomstream hooks -new-secret prints one)", SecretPrefix)
	}
	switch {
	case c.Timeout < 100*time.Millisecond:
		return fmt.Errorf("ROOMSTREAM_WEBHOOK_TIMEOUT must be at least 100ms, got %s", c.Timeout)
	case c.MaxAttempts < 1:
		return fmt.Errorf("ROOMSTREAM_WEBHOOK_MAX_ATTEMPTS must be at least 1, got %d", c.MaxAttempts)
	case c.Backoff < time.Millisecond:
		return fmt.Errorf("ROOMSTREAM_WEBHOOK_BACKOFF must be at least 1ms, got %s", c.Backoff)
	case c.BackoffMax < c.Backoff:
		return fmt.Errorf("ROOMSTREAM_WEBHOOK_BACKOFF_MAX must be at least ROOMSTREAM_WEBHOOK_BACKOFF (%s), got %s", c.Backoff, c.BackoffMax)
	case c.Concurrency < 1:
		return fmt.Errorf("ROOMSTREAM_WEBHOOK_CONCURRENCY must be at least 1, got %d", c.Concurrency)
	case c.BatchSize < 1 || c.BatchSize > 10000:
		return fmt.Errorf("ROOMSTREAM_WEBHOOK_BATCH_SIZE must be between 1 and 10000, got %d", c.BatchSize)
	case c.MaxQueued < int(c.BatchSize):
		return fmt.Errorf("ROOMSTREAM_WEBHOOK_MAX_QUEUED must be at least ROOMSTREAM_WEBHOOK_BATCH_SIZE (%d), got %d", c.BatchSize, c.MaxQueued)
	case c.LeaseTTL < 500*time.Millisecond:
		return fmt.Errorf("ROOMSTREAM_LEASE_TTL must be at least 500ms, got %s", c.LeaseTTL)
	}
	if _, err := newFilter(c.Events); err != nil {
		return fmt.Errorf("ROOMSTREAM_WEBHOOK_EVENTS: %w", err)
	}
	return nil
}
