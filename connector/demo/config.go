package demo

import (
	"fmt"
	"time"

	"github.com/roomstream/roomstream/streams"
)

const (
	// ChunkSize is the size of the pieces the page uploads a file in; each
	// answered piece is one progress report.
	ChunkSize = 256 << 10
	// MaxChunk is the largest piece one PUT may carry.
	MaxChunk = 4 << 20
	// MaxNameRunes bounds the demo user names.
	MaxNameRunes = 64
	// staleUpload is how long an unfinished upload may sit idle before its
	// bytes are thrown away.
	staleUpload = 15 * time.Minute
)

// Config configures the demo (read by `roomstream dev` from ROOMSTREAM_DEMO_*).
type Config struct {
	MaxUpload  int64         `envconfig:"DEMO_MAX_UPLOAD" default:"33554432" desc:"largest file the demo upload accepts, in bytes"`
	StoreLimit int64         `envconfig:"DEMO_STORE_LIMIT" default:"536870912" desc:"bytes the demo keeps in its temporary folder in all (files are lost when dev stops)"`
	UploadRate int64         `envconfig:"DEMO_UPLOAD_RATE" default:"2097152" desc:"bytes per second one demo upload may send (0 = unlimited); keeps progress visible on loopback"`
	TokenTTL   time.Duration `envconfig:"DEMO_TOKEN_TTL" default:"12h" desc:"lifetime of the tokens the demo mints"`
}

// DefaultConfig returns the configuration with every default (those of
// its variables' tags).
func DefaultConfig() Config {
	var c Config
	streams.Defaults(&c)
	return c
}

// Defaults that tests and docs refer to, read from the tags.
var (
	DefaultMaxUpload  = DefaultConfig().MaxUpload
	DefaultStoreLimit = DefaultConfig().StoreLimit
	DefaultUploadRate = DefaultConfig().UploadRate
	DefaultTokenTTL   = DefaultConfig().TokenTTL
)

// Validate checks the configuration and names the variable at fault.
func (c *Config) Validate() error {
	switch {
	case c.MaxUpload < 1:
		return fmt.Errorf("ROOMSTREAM_DEMO_MAX_UPLOAD must be at least 1, got %d", c.MaxUpload)
	case c.StoreLimit < c.MaxUpload:
		return fmt.Errorf("ROOMSTREAM_DEMO_STORE_LIMIT (%d) must be at least ROOMSTREAM_DEMO_MAX_UPLOAD (%d)", c.StoreLimit, c.MaxUpload)
	case c.UploadRate < 0:
		return fmt.Errorf("ROOMSTREAM_DEMO_UPLOAD_RATE must not be negative, got %d", c.UploadRate)
	case c.UploadRate > 0 && c.UploadRate < 1024:
		return fmt.Errorf("ROOMSTREAM_DEMO_UPLOAD_RATE must be 0 (unlimited) or at least 1024, got %d", c.UploadRate)
	case c.TokenTTL < time.Minute:
		return fmt.Errorf("ROOMSTREAM_DEMO_TOKEN_TTL must be at least 1m, got %s", c.TokenTTL)
	}
	return nil
}
