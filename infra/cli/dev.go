package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/roomstream/roomstream/connector"
	"github.com/roomstream/roomstream/connector/api"
	"github.com/roomstream/roomstream/connector/auth"
	"github.com/roomstream/roomstream/connector/demo"
	"github.com/roomstream/roomstream/streams"
	"github.com/roomstream/roomstream/workers"
)

// Dev runs the `dev` command: a connector and a worker in one process,
// on an embedded Redis unless ROOMSTREAM_REDIS_URL is set, plus the demo
// web app at / with its dev-only token mint and upload store. Only this
// command mounts the demo.
func Dev(args []string) error {
	var cc connector.Config
	var ac api.Config
	var wc workers.Config
	var dc demo.Config
	var lc logConfig
	fs := newFlags("dev", "dev [-user ID] [-name NAME]", &cc, &ac, &wc, &dc, &lc)
	user := fs.String("user", "demo", "user id of the printed demo token")
	name := fs.String("name", "Demo User", "user name of the printed demo token")
	if err := parse(fs, args); err != nil {
		return err
	}
	for _, spec := range []any{&cc, &ac, &wc, &dc, &lc} {
		if err := loadEnv(spec); err != nil {
			return err
		}
	}
	if os.Getenv("ROOMSTREAM_HTTP_ADDR") == "" {
		// The demo mints a token for anyone who asks: it listens on
		// this machine only unless told otherwise.
		cc.HTTPAddr = "127.0.0.1:8080"
	}
	if os.Getenv("ROOMSTREAM_LOG_LEVEL") == "" {
		// The banner is what a developer needs to see; start-up logs
		// (partitions acquired, loops started) only bury it.
		lc.LogLevel = "warn"
	}
	log, err := lc.logger()
	if err != nil {
		return err
	}
	if cc.JWTPublicKeys != "" || cc.JWKSURL != "" {
		// The demo mints tokens, which only a shared secret allows.
		return errors.New("roomstream dev signs its demo tokens with HS256: unset ROOMSTREAM_JWT_PUBLIC_KEY_FILE and ROOMSTREAM_JWKS_URL (roomstream connector uses them)")
	}
	generated := false
	if cc.JWTSecret == "" {
		b := make([]byte, 24)
		_, _ = rand.Read(b)
		cc.JWTSecret, generated = hex.EncodeToString(b), true
	}
	embedded := ""
	if cc.RedisURL == "" {
		mr, err := startEmbeddedRedis()
		if err != nil {
			return err
		}
		defer mr.Close()
		embedded = mr.Addr()
		cc.RedisURL = "redis://" + mr.Addr()
	}
	wc.Config = cc.Config
	if err := cc.Validate(); err != nil {
		return err
	}
	if err := ac.Validate(); err != nil {
		return err
	}
	cc.MaxLifetime = ac.RevokeTTL // as the connector command does
	if dc.TokenTTL > ac.RevokeTTL {
		return fmt.Errorf("ROOMSTREAM_DEMO_TOKEN_TTL (%s) must not exceed ROOMSTREAM_API_REVOKE_TTL (%s): the connector refuses tokens that outlive a revocation", dc.TokenTTL, ac.RevokeTTL)
	}
	if err := wc.Validate(); err != nil {
		return err
	}

	ctx, stop := signalContext()
	defer stop()
	rdb, err := connectRedis(ctx, cc.Config, log)
	if err != nil {
		return err
	}
	defer rdb.Close()
	sc := streams.New(rdb, cc.Config)
	reg := newRegistry()
	guard := connector.NewGuard(cc)
	srv := connector.New(cc, sc, log, &connector.Options{Registerer: reg, Guard: guard})
	w := workers.New(wc, sc, log, &workers.Options{Registerer: reg})

	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv.Handler())
	mux.HandleFunc("/healthz", connector.Healthz)
	mux.Handle("/readyz", connector.Readyz(func() bool { return srv.Ready() && w.Ready() }))
	mux.Handle("/metrics", metricsHandler(reg))
	stopAPI, err := mountAPI(mux, ac, cc, guard, sc, log, reg)
	if err != nil {
		return err
	}
	defer stopAPI()
	app, err := demo.Mount(mux, cc.AuthConfig, dc, log)
	if err != nil {
		return err
	}
	defer app.Close()
	hs, addr, err := listenClients(cc.HTTPAddr, cc, guard, mux, log)
	if err != nil {
		return err
	}
	token, err := auth.SignToken(auth.HS256Key(cc.JWTSecret), auth.TokenClaims{UserID: *user, UserName: *name,
		Issuer: cc.JWTIssuer, Audience: cc.JWTAudience, TTL: min(24*time.Hour, ac.RevokeTTL)})
	if err != nil {
		return err
	}

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	go func() { defer wg.Done(); errs <- w.Run(ctx) }()
	go func() { defer wg.Done(); errs <- srv.Run(ctx) }()
	// Print the banner once everything runs, after the start-up logs, so
	// that it is the last thing on the screen.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(20 * time.Millisecond) {
		if srv.Ready() && w.Ready() && len(w.Owned()) == cc.Partitions {
			break
		}
	}
	printBanner(addr, embedded, token, *user, cc.JWTSecret, generated, dc)
	select {
	case err = <-errs:
		stop()
	case <-ctx.Done():
	}
	wg.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	return err
}

// startEmbeddedRedis starts miniredis on a loopback port and advances its
// clock with the wall clock, so that TTLs expire as they would on Redis.
func startEmbeddedRedis() (*miniredis.Miniredis, error) {
	mr := miniredis.NewMiniRedis()
	if err := mr.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("start embedded Redis: %w", err)
	}
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		last := time.Now()
		for now := range t.C {
			mr.SetTime(now)
			mr.FastForward(now.Sub(last))
			last = now
		}
	}()
	return mr, nil
}

func printBanner(addr, embedded, token, user, secret string, generated bool, dc demo.Config) {
	host, port, _ := net.SplitHostPort(addr)
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "localhost"
	}
	base := "http://" + net.JoinHostPort(host, port)
	var b strings.Builder
	fmt.Fprintf(&b, "\nroomstream dev is running\n\n")
	fmt.Fprintf(&b, "  demo     %s/   open it in two browser tabs, pick two names, join one room\n", base)
	rate := "unthrottled"
	if dc.UploadRate > 0 {
		rate = demo.HumanBytes(dc.UploadRate) + "/s each"
	}
	fmt.Fprintf(&b, "           dev only: POST /demo/token signs a token for any name; uploads up to %s, %s\n",
		demo.HumanBytes(dc.MaxUpload), rate)
	fmt.Fprintf(&b, "  socket   %s/socket.io/   (Socket.IO v4: WebSocket, or HTTP long-polling then the upgrade)\n", base)
	if embedded != "" {
		fmt.Fprintf(&b, "  redis    embedded (miniredis on %s); set ROOMSTREAM_REDIS_URL to use a real Redis\n", embedded)
	} else {
		fmt.Fprintf(&b, "  redis    ROOMSTREAM_REDIS_URL\n")
	}
	fmt.Fprintf(&b, "  token    %s\n", token)
	fmt.Fprintf(&b, "           (user %q, valid 24h)\n", user)
	if generated {
		fmt.Fprintf(&b, "  secret   %s  (generated; set ROOMSTREAM_JWT_SECRET to keep tokens valid across restarts)\n", secret)
	}
	fmt.Fprintf(&b, "\n  io(%q, { auth: { token } })\n\n", base)
	fmt.Fprint(os.Stderr, b.String())
}
