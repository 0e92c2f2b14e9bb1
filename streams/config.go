package streams

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config is the Redis and stream configuration every process shares. It is
// embedded in the connector's and the worker's configuration, so its
// variables carry the plain ROOMSTREAM_ prefix.
type Config struct {
	RedisURL         string        `envconfig:"REDIS_URL" desc:"redis:// URL of Redis; several comma-separated URLs mean Redis Cluster (dev: empty = embedded Redis)"`
	RedisCluster     bool          `envconfig:"REDIS_CLUSTER" default:"false" desc:"treat REDIS_URL as the seed of a Redis Cluster even when it lists one node"`
	RedisPoolSize    int           `envconfig:"REDIS_POOL_SIZE" default:"0" desc:"connections per Redis node (0 = sized from the partition count)"`
	KeyPrefix        string        `envconfig:"KEY_PREFIX" default:"" desc:"prefix put in front of every key, so several deployments can share one Redis"`
	Partitions       int           `envconfig:"PARTITIONS" default:"16" desc:"number of inbound partition streams; every process of a deployment must agree"`
	RecoveryWindow   time.Duration `envconfig:"RECOVERY_WINDOW" default:"2m" desc:"how long a dropped connection can be recovered; outbound streams keep this much history"`
	InboundRetention time.Duration `envconfig:"INBOUND_RETENTION" default:"168h" desc:"how long processed inbound events stay in the streams (the audit window of replay)"`
	InboundMaxLen    int64         `envconfig:"INBOUND_MAXLEN" default:"1000000" desc:"processed entries kept per inbound partition at most"`
	DurableReplicas  int           `envconfig:"DURABLE_REPLICAS" default:"0" desc:"replicas that must hold a write (Redis WAIT) before a client is answered; 0 = off"`
	DurableTimeout   time.Duration `envconfig:"DURABLE_TIMEOUT" default:"500ms" desc:"how long to wait for DURABLE_REPLICAS"`
}

// Validate checks the configuration and names the variable at fault.
func (c *Config) Validate() error {
	if c.Partitions < 1 || c.Partitions > 4096 {
		return fmt.Errorf("ROOMSTREAM_PARTITIONS must be between 1 and 4096, got %d", c.Partitions)
	}
	if c.RecoveryWindow < 5*time.Second {
		return fmt.Errorf("ROOMSTREAM_RECOVERY_WINDOW must be at least 5s, got %s", c.RecoveryWindow)
	}
	if c.RecoveryWindow > 15*time.Minute {
		return fmt.Errorf("ROOMSTREAM_RECOVERY_WINDOW must be at most 15m (the lifetime of a temporary token), got %s", c.RecoveryWindow)
	}
	if c.InboundRetention < time.Minute {
		return fmt.Errorf("ROOMSTREAM_INBOUND_RETENTION must be at least 1m, got %s", c.InboundRetention)
	}
	if c.InboundMaxLen < 1000 {
		return fmt.Errorf("ROOMSTREAM_INBOUND_MAXLEN must be at least 1000, got %d", c.InboundMaxLen)
	}
	if c.DurableReplicas < 0 {
		return fmt.Errorf("ROOMSTREAM_DURABLE_REPLICAS must not be negative, got %d", c.DurableReplicas)
	}
	if strings.ContainsAny(c.KeyPrefix, "{} \t\r\n") {
		return fmt.Errorf("ROOMSTREAM_KEY_PREFIX must not contain braces or spaces, got %q", c.KeyPrefix)
	}
	if c.RedisURL != "" {
		if _, err := c.redisOptions(); err != nil {
			return err
		}
	}
	return nil
}

// redisOptions turns RedisURL into go-redis options.
func (c *Config) redisOptions() (*redis.UniversalOptions, error) {
	urls := strings.Split(c.RedisURL, ",")
	opts := &redis.UniversalOptions{}
	for i, raw := range urls {
		raw = strings.TrimSpace(raw)
		if !strings.Contains(raw, "://") {
			raw = "redis://" + raw
		}
		o, err := redis.ParseURL(raw)
		if err != nil {
			return nil, fmt.Errorf("ROOMSTREAM_REDIS_URL: %q: %w", redact(raw), err)
		}
		opts.Addrs = append(opts.Addrs, o.Addr)
		if i == 0 {
			opts.Username, opts.Password, opts.DB, opts.TLSConfig = o.Username, o.Password, o.DB, o.TLSConfig
		}
	}
	opts.IsClusterMode = c.RedisCluster || len(opts.Addrs) > 1
	if opts.IsClusterMode && opts.DB != 0 {
		return nil, errors.New("ROOMSTREAM_REDIS_URL: Redis Cluster has no databases; drop the /db part")
	}
	pool := c.RedisPoolSize
	if pool == 0 {
		// Each owned partition holds a connection in a blocking read, each
		// connector one for its outbound stream; the rest serve commands.
		pool = c.Partitions + 64
	}
	opts.PoolSize = pool
	// RESP2: roomstream uses no push messages (client-side caching,
	// maintenance notifications); with RESP3 the client checks its
	// connection for them around every command, a read system call that
	// profiles showed at an eighth of a worker's CPU.
	opts.Protocol = 2
	opts.MinRetryBackoff = 50 * time.Millisecond
	opts.MaxRetryBackoff = 2 * time.Second
	opts.DialTimeout = 2 * time.Second
	opts.ReadTimeout = 3 * time.Second
	opts.WriteTimeout = 3 * time.Second
	return opts, nil
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable>"
	}
	return u.Redacted()
}

// Connect opens the Redis client the configuration describes and checks
// that it answers within ctx.
func (c *Config) Connect(ctx context.Context) (redis.UniversalClient, error) {
	if c.RedisURL == "" {
		return nil, errors.New("ROOMSTREAM_REDIS_URL is not set")
	}
	opts, err := c.redisOptions()
	if err != nil {
		return nil, err
	}
	rdb := redis.NewUniversalClient(opts)
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("connect to Redis at %s: %w", strings.Join(opts.Addrs, ","), err)
	}
	return rdb, nil
}
