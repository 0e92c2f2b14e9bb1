package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// Config says where the keys that verify client tokens come from, and
// which claims every token must carry. A connector embeds it, so the
// variables keep their names (ROOMSTREAM_JWT_SECRET, ...).
type Config struct {
	JWTSecret      string        `envconfig:"JWT_SECRET" desc:"HS256 secret that signs client tokens (one of JWT_SECRET, JWT_PUBLIC_KEY_FILE or JWKS_URL is required; dev makes a secret up)"`
	JWTPublicKeys  string        `envconfig:"JWT_PUBLIC_KEY_FILE" desc:"PEM file of the public keys that verify client tokens (RSA: RS256, ECDSA: ES256/384/512, Ed25519: EdDSA; one or several PUBLIC KEY or CERTIFICATE blocks)"`
	JWKSURL        string        `envconfig:"JWKS_URL" desc:"URL of a JSON Web Key Set that verifies client tokens (keys chosen by kid)"`
	JWKSRefresh    time.Duration `envconfig:"JWKS_REFRESH" default:"1h" desc:"how often the JWKS is fetched again in the background"`
	JWKSMinRefresh time.Duration `envconfig:"JWKS_UNKNOWN_KID_REFRESH" default:"1m" desc:"least time between JWKS fetches triggered by tokens with an unknown kid"`
	JWTIssuer      string        `envconfig:"JWT_ISSUER" desc:"required 'iss' claim (empty = not checked)"`
	JWTAudience    string        `envconfig:"JWT_AUDIENCE" desc:"required 'aud' claim (empty = not checked)"`
	JWTLeeway      time.Duration `envconfig:"JWT_LEEWAY" default:"5s" desc:"clock skew allowed when checking exp, nbf and iat"`
	// MaxLifetime refuses tokens that live longer (VerifierOptions); 0:
	// no bound. It is no variable of its own: the commands set it to
	// API_REVOKE_TTL, how long a revocation lasts.
	MaxLifetime time.Duration `ignored:"true"`
}

// Validate checks that exactly one source of token keys is set, and that
// it can be used; errors name the variable at fault.
func (c *Config) Validate() error {
	var set []string
	if c.JWTSecret != "" {
		set = append(set, "ROOMSTREAM_JWT_SECRET")
	}
	if c.JWTPublicKeys != "" {
		set = append(set, "ROOMSTREAM_JWT_PUBLIC_KEY_FILE")
	}
	if c.JWKSURL != "" {
		set = append(set, "ROOMSTREAM_JWKS_URL")
	}
	switch {
	case len(set) == 0:
		return errors.New("ROOMSTREAM_JWT_SECRET (HS256), ROOMSTREAM_JWT_PUBLIC_KEY_FILE or ROOMSTREAM_JWKS_URL must be set")
	case len(set) > 1:
		return fmt.Errorf("%s are set: set only one of them", strings.Join(set, " and "))
	case c.JWTSecret != "" && len(c.JWTSecret) < 16:
		return fmt.Errorf("ROOMSTREAM_JWT_SECRET must be set to at least 16 characters")
	case c.JWTPublicKeys != "":
		if _, err := LoadPublicKeys(c.JWTPublicKeys); err != nil {
			return fmt.Errorf("ROOMSTREAM_JWT_PUBLIC_KEY_FILE: %w", err)
		}
	case c.JWKSURL != "":
		u, err := url.Parse(c.JWKSURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("ROOMSTREAM_JWKS_URL must be an https:// (or http://) URL, got %q", c.JWKSURL)
		}
		if c.JWKSRefresh < 10*time.Second {
			return fmt.Errorf("ROOMSTREAM_JWKS_REFRESH must be at least 10s, got %s", c.JWKSRefresh)
		}
		if c.JWKSMinRefresh < jwksTimeout+5*time.Second {
			// Shorter, a token with an unknown kid would wait for the
			// rate limit instead of being refused at once.
			return fmt.Errorf("ROOMSTREAM_JWKS_UNKNOWN_KID_REFRESH must be at least %s, got %s", jwksTimeout+5*time.Second, c.JWKSMinRefresh)
		}
	}
	return nil
}

// NewVerifierFromConfig returns the verifier c asks for: HS256 with
// JWT_SECRET, the keys of JWT_PUBLIC_KEY_FILE, or the key set at JWKS_URL
// (fetched in the background until ctx ends).
func NewVerifierFromConfig(ctx context.Context, c *Config, log *slog.Logger) (*Verifier, error) {
	o := VerifierOptions{Issuer: c.JWTIssuer, Audience: c.JWTAudience, Leeway: c.JWTLeeway, MaxLifetime: c.MaxLifetime}
	switch {
	case c.JWTPublicKeys != "":
		keys, err := LoadPublicKeys(c.JWTPublicKeys)
		if err != nil {
			return nil, fmt.Errorf("ROOMSTREAM_JWT_PUBLIC_KEY_FILE: %w", err)
		}
		return NewPublicKeyVerifier(keys, o)
	case c.JWKSURL != "":
		if log != nil && strings.HasPrefix(c.JWKSURL, "http:") {
			log.Warn("ROOMSTREAM_JWKS_URL is plain http: whoever sits on the path can replace the keys; use https", "url", c.JWKSURL)
		}
		v, err := NewJWKSVerifier(ctx, c.JWKSURL, JWKSOptions{Refresh: c.JWKSRefresh, UnknownKIDRefresh: c.JWKSMinRefresh, Log: log}, o)
		if err != nil {
			return nil, fmt.Errorf("ROOMSTREAM_JWKS_URL: %w", err)
		}
		return v, nil
	}
	return NewHS256Verifier(c.JWTSecret, o), nil
}
