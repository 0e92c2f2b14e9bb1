package cli

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"

	"github.com/roomstream/roomstream/connector"
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
	log, err := lc.logger()
	if err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	reg := newRegistry()
	var h *hooks.Hooks
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", connector.Healthz)
	mux.Handle("/readyz", connector.Readyz(func() bool { return h != nil && h.Ready() }))
	mux.Handle("/metrics", metricsHandler(reg))
	debugRoutes(mux)
	hs, addr, err := listen(cfg.HTTPAddr, mux, log)
	if err != nil {
		return err
	}
	defer hs.Close()
	rdb, err := connectRedis(ctx, cfg.Config, log)
	if err != nil {
		return err
	}
	defer rdb.Close()
	h, err = hooks.New(cfg, streams.New(rdb, cfg.Config), log, &hooks.Options{Registerer: reg})
	if err != nil {
		return err
	}
	log.Info("hooks listening", "addr", addr, "id", h.ID())
	return h.Run(ctx)
}
