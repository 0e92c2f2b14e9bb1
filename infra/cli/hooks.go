package cli

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomstream/roomstream/streams"
	"github.com/roomstream/roomstream/workers/hooks"
)

// Hooks runs the `hooks` command: a process that delivers the
// applied-events feed as signed webhooks.
func Hooks(args []string) error {
	var cfg hooks.Config
	var lc logConfig
	fs := newFlags("hooks", "hooks [-new-secret]", &cfg, &lc)
	newSecret := fs.Bool("new-secret", false, "print a new random ROOMSTREAM_WEBHOOK_SECRET and exit")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *newSecret {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		fmt.Println(hooks.SecretPrefix + base64.StdEncoding.EncodeToString(b))
		return nil
	}
	for _, spec := range []any{&cfg, &lc} {
		if err := loadEnv(spec); err != nil {
			return err
		}
	}
	if cfg.RedisURL == "" {
		return errors.New("ROOMSTREAM_REDIS_URL is required (redis://host:port)")
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	return serveProcess("hooks", cfg.HTTPAddr, cfg.Config, lc,
		func(c *streams.Client, log *slog.Logger, reg *prometheus.Registry) (process, error) {
			return hooks.New(cfg, c, log, &hooks.Options{Registerer: reg})
		})
}
