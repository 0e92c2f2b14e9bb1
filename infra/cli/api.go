package cli

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomstream/roomstream/connector/api"
	"github.com/roomstream/roomstream/streams"
)

// mountAPI serves the server API when ROOMSTREAM_API_KEY is set: on mux
// (the connector's own address), or on its own listener at
// ROOMSTREAM_API_ADDR. The function it returns stops that listener.
func mountAPI(mux *http.ServeMux, cfg api.Config, sc *streams.Client, log *slog.Logger, reg prometheus.Registerer) (func(), error) {
	if cfg.Key == "" {
		return func() {}, nil
	}
	svc := api.NewService(sc, &api.Options{RevokeTTL: cfg.RevokeTTL})
	h := api.NewHandler(svc, cfg.Key, log, reg, nil)
	if cfg.Addr == "" {
		mux.Handle(api.Prefix, h)
		log.Info("server API on the connector's address", "path", api.Prefix)
		return func() {}, nil
	}
	amux := http.NewServeMux()
	amux.Handle(api.Prefix, h)
	hs, addr, err := listen(cfg.Addr, amux, log)
	if err != nil {
		return nil, err
	}
	log.Info("server API listening", "addr", addr, "path", api.Prefix)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
	}, nil
}
