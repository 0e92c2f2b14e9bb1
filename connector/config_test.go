package connector

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/roomstream/roomstream/connector/auth"
	"github.com/roomstream/roomstream/schemas"
)

// TestConfigValidatesKeys: a connector's configuration is not valid
// without a usable source of token keys (auth.Config's checks, which
// connector/auth tests case by case).
func TestConfigValidatesKeys(t *testing.T) {
	var c Config
	defaults(t, &c)
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "ROOMSTREAM_JWT_SECRET (HS256), ROOMSTREAM_JWT_PUBLIC_KEY_FILE or ROOMSTREAM_JWKS_URL must be set") {
		t.Errorf("no keys: %v", err)
	}
	c.JWTSecret = testSecret
	if err := c.Validate(); err != nil {
		t.Errorf("with a secret: %v", err)
	}
}

func TestServerUsesConfiguredKeys(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pub := filepath.Join(dir, "pub.pem")
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	sign := func(k auth.SigningKey) string {
		t.Helper()
		tok, err := auth.SignToken(k, auth.TokenClaims{UserID: "alice", UserName: "Alice", TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	fileKey := sign(auth.SigningKey{Method: jwt.SigningMethodRS256, Key: priv})
	hs256 := sign(auth.HS256Key(testSecret))
	// refused checks that v refuses token with invalid_token, saying want.
	refused := func(v *auth.Verifier, name, token, want string) {
		t.Helper()
		if id, err := v.Verify(token); err == nil || err.Code != schemas.CodeInvalidToken || !strings.Contains(err.Message, want) {
			t.Errorf("%s: %+v %v, want invalid_token containing %q", name, id, err, want)
		}
	}
	log := slog.New(slog.DiscardHandler)
	s := New(Config{AuthConfig: auth.Config{JWTPublicKeys: pub}}, nil, log, nil)
	if id, err := s.verifier.Verify(fileKey); err != nil || id.UserID != "alice" {
		t.Errorf("file key: %+v %v, want alice", id, err)
	}
	refused(s.verifier, "HS256", hs256, "not accepted")

	// A file gone between Validate and New: every token is refused and
	// Run says why.
	s = New(Config{AuthConfig: auth.Config{JWTPublicKeys: filepath.Join(dir, "gone.pem")}}, nil, log, nil)
	refused(s.verifier, "no keys", fileKey, "could not be loaded")
	if err := s.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "ROOMSTREAM_JWT_PUBLIC_KEY_FILE") {
		t.Errorf("Run: %v", err)
	}
}
