package cli

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/roomstream/roomstream/connector/auth"
)

// tokenRun runs `roomstream token args...` and returns what it printed.
func tokenRun(t *testing.T, args ...string) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	err = Token(args)
	os.Stdout = stdout
	_ = w.Close()
	out, _ := io.ReadAll(r)
	return strings.TrimSpace(string(out)), err
}

func TestTokenSignsWithPrivateKey(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	file := filepath.Join(t.TempDir(), "signing.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ROOMSTREAM_JWT_SECRET", "")
	t.Setenv("ROOMSTREAM_JWT_ISSUER", "auth.example")
	t.Setenv("ROOMSTREAM_JWT_AUDIENCE", "rooms")
	tok, err := tokenRun(t, "-user", "alice", "-name", "Alice", "-key", file, "-kid", "k1")
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewPublicKeyVerifier([]crypto.PublicKey{key.Public()}, auth.VerifierOptions{Issuer: "auth.example", Audience: "rooms"})
	if err != nil {
		t.Fatal(err)
	}
	if id, verr := v.Verify(tok); verr != nil || id.UserID != "alice" || id.UserName != "Alice" {
		t.Fatalf("token %q: %+v %v", tok, id, verr)
	}

	if _, err := tokenRun(t, "-user", "alice"); err == nil || !strings.Contains(err.Error(), "ROOMSTREAM_JWT_SECRET") {
		t.Errorf("no secret and no key: %v", err)
	}
	if _, err := tokenRun(t, "-user", "alice", "-kid", "k1"); err == nil || !strings.Contains(err.Error(), "-kid needs -key") {
		t.Errorf("-kid alone: %v", err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(key.Public())
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := tokenRun(t, "-user", "alice", "-key", file); err == nil || !strings.Contains(err.Error(), "-key "+file) {
		t.Errorf("public key given to -key: %v", err)
	}
	t.Setenv("ROOMSTREAM_JWT_SECRET", "0123456789abcdef-secret")
	tok, err = tokenRun(t, "-user", "bob")
	if err != nil {
		t.Fatal(err)
	}
	if id, verr := auth.NewVerifier("0123456789abcdef-secret", "auth.example", "rooms", 0).Verify(tok); verr != nil || id.UserID != "bob" {
		t.Errorf("HS256 token with iss/aud: %+v %v", id, verr)
	}
}

// TestTokenRooms: -rooms writes the `rooms` claim the connector reads
// where ROOMSTREAM_ROOM_ACCESS=claims.
func TestTokenRooms(t *testing.T) {
	t.Setenv("ROOMSTREAM_JWT_SECRET", "0123456789abcdef-secret")
	t.Setenv("ROOMSTREAM_JWT_ISSUER", "")
	t.Setenv("ROOMSTREAM_JWT_AUDIENCE", "")
	tok, err := tokenRun(t, "-user", "bob", "-rooms", "design,team-*")
	if err != nil {
		t.Fatal(err)
	}
	id, verr := auth.NewVerifier("0123456789abcdef-secret", "", "", 0).Verify(tok)
	if verr != nil || !id.Rooms.Allows("design") || !id.Rooms.Allows("team-a") || id.Rooms.Allows("other") {
		t.Errorf("token with -rooms: %+v %v", id.Rooms, verr)
	}
	if _, err := tokenRun(t, "-user", "bob", "-rooms", "a b"); err == nil {
		t.Error("-rooms with a malformed entry signed a token")
	}
}
