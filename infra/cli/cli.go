// Package cli implements the subcommands of the roomstream binary: it wires
// configuration, logging, HTTP endpoints, signals and Redis to the
// connector, the workers, the server API (mounted beside the connector:
// api.go), the webhook deliverer (hooks.go) and the demo (dev only), and
// runs the operators' commands
// (token, deadletters, replay, rooms, users). It holds no room or protocol
// logic.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/connector"
	"github.com/roomstream/roomstream/connector/api"
	"github.com/roomstream/roomstream/connector/auth"
	"github.com/roomstream/roomstream/connector/netguard"
	"github.com/roomstream/roomstream/streams"
	"github.com/roomstream/roomstream/workers"
)

const envPrefix = "ROOMSTREAM"

// logConfig is shared by every long-running command.
type logConfig struct {
	LogFormat string `envconfig:"LOG_FORMAT" default:"text" desc:"log format: text or json"`
	LogLevel  string `envconfig:"LOG_LEVEL" default:"info" desc:"log level: debug, info, warn or error"`
}

func (c logConfig) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("ROOMSTREAM_LOG_LEVEL must be debug, info, warn or error, got %q", c.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.LogFormat {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("ROOMSTREAM_LOG_FORMAT must be text or json, got %q", c.LogFormat)
}

// newFlags returns a flag set whose -h lists the flags and then every
// environment variable of specs with its default.
func newFlags(name, synopsis string, specs ...any) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: roomstream %s\n\n", synopsis)
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(out, "Flags:")
			fs.PrintDefaults()
			fmt.Fprintln(out)
		}
		if len(specs) > 0 {
			fmt.Fprintln(out, "Environment:")
			printEnv(out, specs...)
		}
	}
	return fs
}

func printEnv(out interface{ Write([]byte) (int, error) }, specs ...any) {
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  VARIABLE\tDEFAULT\tDESCRIPTION")
	seen := map[string]bool{}
	for _, spec := range specs {
		var b strings.Builder
		_ = envconfig.Usagef(envPrefix, spec, &b, "{{range .}}{{usage_key .}}\t{{usage_default .}}\t{{usage_description .}}\n{{end}}")
		for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
			key, _, _ := strings.Cut(line, "\t")
			if line == "" || seen[key] {
				continue
			}
			seen[key] = true
			fmt.Fprintln(tw, "  "+line)
		}
	}
	_ = tw.Flush()
}

// loadEnv fills spec from the environment; errors name the variable.
func loadEnv(spec any) error {
	if err := envconfig.Process(envPrefix, spec); err != nil {
		var pe *envconfig.ParseError
		if errors.As(err, &pe) {
			return fmt.Errorf("%s_%s: cannot parse %q as %s", envPrefix, pe.KeyName, pe.Value, pe.TypeName)
		}
		return err
	}
	return nil
}

// parse handles -h (exit 0 after printing usage) and bad flags.
func parse(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err == nil && fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return err
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// connectRedis opens Redis, retrying with backoff until it answers or ctx
// ends, so that processes started before Redis come up on their own.
func connectRedis(ctx context.Context, cfg streams.Config, log *slog.Logger) (redis.UniversalClient, error) {
	bo := streams.NewBackoff(200*time.Millisecond, 5*time.Second)
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		rdb, err := cfg.Connect(cctx)
		cancel()
		if err == nil {
			if attempt > 1 {
				log.Info("connected to Redis", "attempts", attempt)
			}
			return rdb, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		delay := bo.Next()
		log.Warn("Redis not reachable yet, retrying", "err", err, "in", delay)
		if !streams.SleepCtx(ctx, delay) {
			return nil, err
		}
	}
}

// listen starts an HTTP server for h on addr and returns it with its
// actual address. A client gets 10 s to send its request headers, 64 KiB
// of them, and an idle keep-alive connection is closed after 2 minutes:
// the admin and worker endpoints, which clients do not reach.
func listen(addr string, h http.Handler, log *slog.Logger) (*http.Server, string, error) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	a, err := serve(addr, srv, nil, log)
	return srv, a, err
}

// listenClients starts the server of what clients reach (/socket.io/,
// the server API): the connector's request deadlines, and its
// connections counted per client address by g.
func listenClients(addr string, cfg connector.Config, g *netguard.Guard, h http.Handler, log *slog.Logger) (*http.Server, string, error) {
	srv := connector.HTTPServer(cfg, g, h)
	a, err := serve(addr, srv, g, log)
	return srv, a, err
}

// serve runs srv on a listener on addr (wrapped by g when not nil) and
// returns the listener's address.
func serve(addr string, srv *http.Server, g *netguard.Guard, log *slog.Logger) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listen on %s: %w", addr, err)
	}
	actual := ln.Addr().String()
	if g != nil {
		ln = g.Listen(ln)
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	return actual, nil
}

// advertiseAddr is the address other connectors reach a connector
// listening on addr at: addr itself, with this machine's hostname when it
// names no host (":8080", "0.0.0.0:8080", "[::]:8080").
func advertiseAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if name, err := os.Hostname(); err == nil && name != "" {
			host = name
		}
	}
	return net.JoinHostPort(host, port)
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func metricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// debugRoutes serves the Go profiler at /debug/pprof/ when
// ROOMSTREAM_PPROF=true (benchmarks and profiling; off by default). A
// connector serves it on its admin address only.
func debugRoutes(mux *http.ServeMux) {
	if os.Getenv("ROOMSTREAM_PPROF") != "true" {
		return
	}
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}

// Connector runs the `connector` command.
func Connector(args []string) error {
	var cfg connector.Config
	var ac api.Config
	var lc logConfig
	fs := newFlags("connector", "connector", &cfg, &ac, &lc)
	if err := parse(fs, args); err != nil {
		return err
	}
	for _, spec := range []any{&cfg, &ac, &lc} {
		if err := loadEnv(spec); err != nil {
			return err
		}
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := ac.Validate(); err != nil {
		return err
	}
	// A token that outlives its revocation would be accepted again once
	// the mark expires: refuse tokens that live longer than it lasts.
	cfg.MaxLifetime = ac.RevokeTTL
	if cfg.RedisURL == "" {
		return errors.New("ROOMSTREAM_REDIS_URL is required (redis://host:port)")
	}
	log, err := lc.logger()
	if err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(cfg.GCPercent)
	}
	ctx, stop := signalContext()
	defer stop()
	reg := newRegistry()
	var srv *connector.Server
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", connector.Healthz)
	mux.Handle("/readyz", connector.Readyz(func() bool { return srv != nil && srv.Ready() }))
	if cfg.AdminAddr != "off" {
		// Metrics and the profiler stay off the port clients reach.
		admin := http.NewServeMux()
		admin.Handle("/metrics", metricsHandler(reg))
		debugRoutes(admin)
		as, aaddr, err := listen(cfg.AdminAddr, admin, log)
		if err != nil {
			return fmt.Errorf("ROOMSTREAM_ADMIN_ADDR: %w", err)
		}
		defer as.Close()
		log.Info("admin listening", "addr", aaddr)
	}
	guard := connector.NewGuard(cfg)
	hs, addr, err := listenClients(cfg.HTTPAddr, cfg, guard, mux, log)
	if err != nil {
		return err
	}
	rdb, err := connectRedis(ctx, cfg.Config, log)
	if err != nil {
		return err
	}
	defer rdb.Close()
	if cfg.AdvertiseAddr == "" {
		cfg.AdvertiseAddr = advertiseAddr(addr)
	}
	sc := streams.New(rdb, cfg.Config)
	srv = connector.New(cfg, sc, log, &connector.Options{Registerer: reg, Guard: guard})
	mux.Handle("/socket.io/", srv.Handler())
	stopAPI, err := mountAPI(mux, ac, cfg, guard, sc, log, reg)
	if err != nil {
		return err
	}
	defer stopAPI()
	log.Info("connector listening", "addr", addr, "id", srv.ID())
	err = srv.Run(ctx)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	return err
}

// Worker runs the `worker` command.
func Worker(args []string) error {
	var cfg workers.Config
	var lc logConfig
	fs := newFlags("worker", "worker", &cfg, &lc)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := loadEnv(&cfg); err != nil {
		return err
	}
	if err := loadEnv(&lc); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.RedisURL == "" {
		return errors.New("ROOMSTREAM_REDIS_URL is required (redis://host:port)")
	}
	return serveProcess("worker", cfg.HTTPAddr, cfg.Config, lc,
		func(c *streams.Client, log *slog.Logger, reg *prometheus.Registry) (process, error) {
			return workers.New(cfg, c, log, &workers.Options{Registerer: reg}), nil
		})
}

// process is what serveProcess runs: a worker or a hooks process.
type process interface {
	ID() string
	Ready() bool
	Run(ctx context.Context) error
}

// serveProcess runs a process of the kind that holds no client
// connections (worker, hooks): /healthz, /readyz and /metrics on
// httpAddr, a Redis connection, then the process until a signal.
func serveProcess(kind, httpAddr string, rc streams.Config, lc logConfig,
	start func(*streams.Client, *slog.Logger, *prometheus.Registry) (process, error)) error {
	log, err := lc.logger()
	if err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	reg := newRegistry()
	var p atomic.Pointer[process]
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", connector.Healthz)
	mux.Handle("/readyz", connector.Readyz(func() bool { q := p.Load(); return q != nil && (*q).Ready() }))
	mux.Handle("/metrics", metricsHandler(reg))
	debugRoutes(mux)
	hs, addr, err := listen(httpAddr, mux, log)
	if err != nil {
		return err
	}
	defer hs.Close()
	rdb, err := connectRedis(ctx, rc, log)
	if err != nil {
		return err
	}
	defer rdb.Close()
	q, err := start(streams.New(rdb, rc), log, reg)
	if err != nil {
		return err
	}
	p.Store(&q)
	log.Info(kind+" listening", "addr", addr, "id", q.ID())
	return q.Run(ctx)
}

// Token runs the `token` command.
func Token(args []string) error {
	var env struct {
		JWTSecret   string `envconfig:"JWT_SECRET" desc:"HS256 secret (required unless -key is given)"`
		JWTIssuer   string `envconfig:"JWT_ISSUER" desc:"iss claim of the token (empty = none)"`
		JWTAudience string `envconfig:"JWT_AUDIENCE" desc:"aud claim of the token (empty = none)"`
	}
	fs := newFlags("token", "token -user ID [-name NAME] [-ttl 1h] [-rooms ID,PREFIX*] [-key private.pem [-kid ID]]", &env)
	user := fs.String("user", "", "user id (the token's sub)")
	name := fs.String("name", "", "user name (defaults to the id)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime of the token")
	keyFile := fs.String("key", "", "sign with this private key PEM (RSA: RS256, ECDSA: ES256/384/512, Ed25519: EdDSA) instead of ROOMSTREAM_JWT_SECRET")
	kid := fs.String("kid", "", "key id to put in the token's header (with -key; what a JWKS names the key)")
	rooms := fs.String("rooms", "", "comma-separated `rooms` claim: room ids and prefixes ending in * the user may join where ROOMSTREAM_ROOM_ACCESS=claims (empty: no claim)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := loadEnv(&env); err != nil {
		return err
	}
	if *user == "" {
		return errors.New("-user is required")
	}
	if *ttl <= 0 {
		return errors.New("-ttl must be positive")
	}
	if *name == "" {
		*name = *user
	}
	var key auth.SigningKey
	switch {
	case *keyFile != "":
		data, err := os.ReadFile(*keyFile)
		if err != nil {
			return fmt.Errorf("-key: %w", err)
		}
		if key, err = auth.ParseSigningKey(data); err != nil {
			return fmt.Errorf("-key %s: %w", *keyFile, err)
		}
		key.KID = *kid
	case *kid != "":
		return errors.New("-kid needs -key")
	case len(env.JWTSecret) < 16:
		return errors.New("ROOMSTREAM_JWT_SECRET must be set to at least 16 characters (or sign with -key private.pem)")
	default:
		key = auth.HS256Key(env.JWTSecret)
	}
	claims := auth.TokenClaims{UserID: *user, UserName: *name, Issuer: env.JWTIssuer, Audience: env.JWTAudience, TTL: *ttl}
	if *rooms != "" {
		claims.Rooms = strings.Split(*rooms, ",")
	}
	tok, err := auth.SignToken(key, claims)
	if err != nil {
		return err
	}
	fmt.Println(tok)
	return nil
}
