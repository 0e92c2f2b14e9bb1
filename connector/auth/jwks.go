package auth

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// jwksTimeout is the default bound of one JWKS fetch.
const jwksTimeout = 10 * time.Second

// JWKSOptions tune a JWKS verifier; zero values mean the defaults.
type JWKSOptions struct {
	// Refresh is how often the key set is fetched again in the
	// background (default 1h).
	Refresh time.Duration
	// UnknownKIDRefresh is the least time between the fetches that a token
	// with an unknown kid triggers (default 1m); meanwhile such tokens are
	// refused at once (when it is longer than Timeout; shorter, they may
	// wait for the next allowed fetch).
	UnknownKIDRefresh time.Duration
	// Timeout bounds one fetch (default 10s).
	Timeout time.Duration
	// Client fetches the key set (default: a client with Timeout).
	Client *http.Client
	// Log receives failed fetches (default slog.Default()).
	Log *slog.Logger
}

// NewJWKSVerifier returns a verifier whose keys come from the JSON Web Key
// Set at url, selected by the token's kid (a token without one is checked
// against every key of its algorithm). The set is fetched now and every
// opts.Refresh until ctx ends; a fetch that fails keeps the keys already
// known and is logged, so a connector starts even while the key server is
// away. A token naming an unknown kid fetches the set again, at most once
// per opts.UnknownKIDRefresh.
func NewJWKSVerifier(ctx context.Context, url string, opts JWKSOptions, o VerifierOptions) (*Verifier, error) {
	if opts.Refresh <= 0 {
		opts.Refresh = time.Hour
	}
	if opts.UnknownKIDRefresh <= 0 {
		opts.UnknownKIDRefresh = time.Minute
	}
	if opts.Timeout <= 0 {
		opts.Timeout = jwksTimeout
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: opts.Timeout, Transport: limitBody{http.DefaultTransport, maxJWKSBytes}}
	}
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{url}, keyfunc.Override{
		Client:          opts.Client,
		HTTPTimeout:     opts.Timeout,
		RefreshInterval: opts.Refresh,
		// Burst 1: the first unknown kid fetches at once, the next ones
		// within the interval are refused without waiting (the wait
		// budget is shorter than the interval) and without a fetch.
		RefreshUnknownKID: rate.NewLimiter(rate.Every(opts.UnknownKIDRefresh), 1),
		RateLimitWaitMax:  opts.Timeout,
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(_ context.Context, err error) {
				log.Warn("JWKS fetch failed; keeping the keys known before", "url", u, "err", err)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	return newVerifier(asymmetricAlgs, pinKeys(kf.Keyfunc), o), nil
}

// maxJWKSBytes bounds a fetched key set (a real one is a few KiB); a
// longer one fails to decode and the keys known before are kept.
const maxJWKSBytes = 1 << 20

// limitBody cuts response bodies after n bytes.
type limitBody struct {
	rt http.RoundTripper
	n  int64
}

func (l limitBody) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.rt.RoundTrip(r)
	if err == nil {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.LimitReader(resp.Body, l.n), resp.Body}
	}
	return resp, err
}

// pinKeys keeps only the keys of the type the token's alg is for (a JWKS
// may hold symmetric or other keys under any kid).
func pinKeys(inner jwt.Keyfunc) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		alg := t.Method.Alg()
		got, err := inner(t)
		if err != nil {
			return nil, err
		}
		if set, ok := got.(jwt.VerificationKeySet); ok {
			var fit jwt.VerificationKeySet
			for _, k := range set.Keys {
				if keyFits(alg, k) {
					fit.Keys = append(fit.Keys, k)
				}
			}
			if len(fit.Keys) == 0 {
				return nil, &keyError{"no " + alg + " key in the key set"}
			}
			return fit, nil
		}
		if !keyFits(alg, got) {
			return nil, &keyError{"the key named by kid is not an " + alg + " key"}
		}
		return got, nil
	}
}
