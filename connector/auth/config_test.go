package auth

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/kelseyhightower/envconfig"

	"github.com/roomstream/roomstream/schemas"
)

func TestConfigKeys(t *testing.T) {
	rsaK, _, _ := testKeys(t)
	dir := t.TempDir()
	pub := filepath.Join(dir, "pub.pem")
	priv := filepath.Join(dir, "priv.pem")
	if err := os.WriteFile(pub, publicPEM(t, rsaK[0].public()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(priv, privatePEM(t, rsaK[0].priv), 0o600); err != nil {
		t.Fatal(err)
	}
	base := func() Config {
		var c Config // the defaults (no variable has this prefix)
		if err := envconfig.Process("ROOMSTREAM_KEYS_TEST_UNSET", &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name string
		set  func(*Config)
		want string // "" = valid
	}{
		{"secret", func(c *Config) { c.JWTSecret = testSecret }, ""},
		{"public key file", func(c *Config) { c.JWTPublicKeys = pub }, ""},
		{"JWKS URL", func(c *Config) { c.JWKSURL = "https://auth.example/.well-known/jwks.json" }, ""},
		{"nothing", func(*Config) {}, "ROOMSTREAM_JWT_SECRET (HS256), ROOMSTREAM_JWT_PUBLIC_KEY_FILE or ROOMSTREAM_JWKS_URL must be set"},
		{"short secret", func(c *Config) { c.JWTSecret = "short" }, "ROOMSTREAM_JWT_SECRET must be set to at least 16"},
		{"secret and file", func(c *Config) { c.JWTSecret, c.JWTPublicKeys = testSecret, pub }, "ROOMSTREAM_JWT_SECRET and ROOMSTREAM_JWT_PUBLIC_KEY_FILE are set"},
		{"file and URL", func(c *Config) { c.JWTPublicKeys, c.JWKSURL = pub, "https://a/b" }, "ROOMSTREAM_JWT_PUBLIC_KEY_FILE and ROOMSTREAM_JWKS_URL are set"},
		{"missing file", func(c *Config) { c.JWTPublicKeys = filepath.Join(dir, "nope.pem") }, "ROOMSTREAM_JWT_PUBLIC_KEY_FILE: open"},
		{"private key file", func(c *Config) { c.JWTPublicKeys = priv }, "ROOMSTREAM_JWT_PUBLIC_KEY_FILE: " + priv + ": PEM block 1 is a PRIVATE KEY"},
		{"URL without scheme", func(c *Config) { c.JWKSURL = "auth.example/jwks" }, "ROOMSTREAM_JWKS_URL must be an https://"},
		{"URL of another scheme", func(c *Config) { c.JWKSURL = "file:///etc/jwks.json" }, "ROOMSTREAM_JWKS_URL must be an https://"},
		{"refresh too often", func(c *Config) { c.JWKSURL, c.JWKSRefresh = "https://a/b", time.Second }, "ROOMSTREAM_JWKS_REFRESH must be at least 10s"},
		{"unknown kid refresh", func(c *Config) { c.JWKSURL, c.JWKSMinRefresh = "https://a/b", 0 }, "ROOMSTREAM_JWKS_UNKNOWN_KID_REFRESH must be at least 15s"},
		{"unknown kid refresh shorter than a fetch", func(c *Config) { c.JWKSURL, c.JWKSMinRefresh = "https://a/b", 10*time.Second }, "ROOMSTREAM_JWKS_UNKNOWN_KID_REFRESH must be at least 15s"},
	}
	for _, tt := range tests {
		c := base()
		tt.set(&c)
		err := c.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %v, want an error containing %q", tt.name, err, tt.want)
		}
	}

	// The file's keys verify tokens; the configured issuer is required.
	c := base()
	c.JWTPublicKeys, c.JWTIssuer = pub, "auth.example"
	v, err := NewVerifierFromConfig(context.Background(), &c, nil)
	if err != nil {
		t.Fatal(err)
	}
	claims := goodClaims()
	expect(t, v, "no iss", signKid(t, rsaK[0].method(), rsaK[0].priv, "", claims), schemas.CodeInvalidToken, "iss claim is required")
	claims["iss"] = "auth.example"
	expect(t, v, "file key", signKid(t, rsaK[0].method(), rsaK[0].priv, "", claims), "", "")
	expect(t, v, "HS256 with the file's bytes", signKid(t, jwt.SigningMethodHS256, publicPEM(t, rsaK[0].public()), "", claims), schemas.CodeInvalidToken, "not accepted")
}
