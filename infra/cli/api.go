package cli

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomstream/roomstream/connector"
	"github.com/roomstream/roomstream/connector/api"
	"github.com/roomstream/roomstream/connector/netguard"
	"github.com/roomstream/roomstream/streams"
)

// mountAPI serves the server API when ROOMSTREAM_API_KEY is set: on mux
// (the connector's own address), or on its own listener at
// ROOMSTREAM_API_ADDR, with the connector's request deadlines and
// connection limit (cc, g); g names the client whose failed
// authentications are limited. The function it returns stops that
// listener.
func mountAPI(mux *http.ServeMux, cfg api.Config, cc connector.Config, g *netguard.Guard, sc *streams.Client, log *slog.Logger, reg prometheus.Registerer) (func(), error) {
	if cfg.Key == "" {
		return func() {}, nil
	}
	svc := api.NewService(sc, &api.Options{RevokeTTL: cfg.RevokeTTL})
	h := api.NewHandler(svc, cfg.Key, log, reg, &api.HandlerOptions{
		ClientKey: g.ClientKey,
		Deadline:  api.Timeout + max(cc.ReadTimeout, cc.WriteTimeout),
	})
	if cfg.Addr == "" {
		mux.Handle(api.Prefix, h)
		log.Info("server API on the connector's address", "path", api.Prefix)
		return func() {}, nil
	}
	amux := http.NewServeMux()
	amux.Handle(api.Prefix, h)
	hs, addr, err := listenClients(cfg.Addr, cc, g, amux, log)
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
