package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/roomstream/roomstream/schemas"
)

// jwksServer serves a JSON Web Key Set that a test can change, counting
// the fetches.
type jwksServer struct {
	*httptest.Server
	mu    sync.Mutex
	body  []byte
	hits  atomic.Int64
	close sync.Once
}

func newJWKSServer(t testing.TB) *jwksServer {
	s := &jwksServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(s.body)
	}))
	t.Cleanup(s.Close)
	return s
}

// set serves keys by kid; a []byte is served as a symmetric ("oct") key.
func (s *jwksServer) set(t testing.TB, keys map[string]any) {
	t.Helper()
	var set struct {
		Keys []any `json:"keys"`
	}
	for kid, k := range keys {
		if b, ok := k.([]byte); ok {
			set.Keys = append(set.Keys, map[string]string{"kty": "oct", "kid": kid, "k": base64.RawURLEncoding.EncodeToString(b)})
			continue
		}
		j, err := jwkset.NewJWKFromKey(k, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid}})
		if err != nil {
			t.Fatal(err)
		}
		set.Keys = append(set.Keys, j.Marshal())
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.body = b
	s.mu.Unlock()
}

func newTestJWKSVerifier(t *testing.T, url string, o JWKSOptions) *Verifier {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := NewJWKSVerifier(ctx, url, o, VerifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestJWKSVerifier(t *testing.T) {
	rsaK, ecK, edK := testKeys(t)
	srv := newJWKSServer(t)
	secret := []byte("0123456789abcdef0123456789abcdef")
	srv.set(t, map[string]any{"r1": rsaK[0].public(), "e1": ecK[0].public(), "d1": edK[0].public(), "h1": secret})
	v := newTestJWKSVerifier(t, srv.URL, JWKSOptions{Refresh: time.Hour, UnknownKIDRefresh: time.Hour})
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("%d fetches at start, want 1", n)
	}
	rsaPEM := publicPEM(t, rsaK[0].public())
	expired := goodClaims()
	expired["exp"] = time.Now().Add(-time.Minute).Unix()

	expect(t, v, "RS256 by kid", signKid(t, rsaK[0].method(), rsaK[0].priv, "r1", goodClaims()), "", "")
	expect(t, v, "ES256 by kid", signKid(t, ecK[0].method(), ecK[0].priv, "e1", goodClaims()), "", "")
	expect(t, v, "EdDSA by kid", signKid(t, edK[0].method(), edK[0].priv, "d1", goodClaims()), "", "")
	expect(t, v, "no kid: every key of the algorithm", signKid(t, ecK[0].method(), ecK[0].priv, "", goodClaims()), "", "")
	expect(t, v, "expired", signKid(t, rsaK[0].method(), rsaK[0].priv, "r1", expired), schemas.CodeExpiredToken, "expired")
	expect(t, v, "wrong key for the kid", signKid(t, rsaK[1].method(), rsaK[1].priv, "r1", goodClaims()), schemas.CodeInvalidToken, "signature")
	expect(t, v, "kid of a key of another type", signKid(t, rsaK[0].method(), rsaK[0].priv, "e1", goodClaims()), schemas.CodeInvalidToken, "not an RS256 key")
	expect(t, v, "HS256 with the public PEM as secret", signKid(t, jwt.SigningMethodHS256, rsaPEM, "r1", goodClaims()), schemas.CodeInvalidToken, "HS256 not accepted")
	expect(t, v, "HS256 with the set's own symmetric key", signKid(t, jwt.SigningMethodHS256, secret, "h1", goodClaims()), schemas.CodeInvalidToken, "HS256 not accepted")
	// A token claiming RS256 under the kid of the symmetric key: the key
	// is never handed to the RSA verifier.
	forged := signKid(t, jwt.SigningMethodHS256, secret, "h1", goodClaims())
	parts := strings.Split(forged, ".")
	parts[0] = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"h1","typ":"JWT"}`))
	expect(t, v, "RS256 header on the symmetric key", strings.Join(parts, "."), schemas.CodeInvalidToken, "not an RS256 key")

	before := srv.hits.Load()
	expect(t, v, "unknown kid", signKid(t, rsaK[1].method(), rsaK[1].priv, "r9", goodClaims()), schemas.CodeInvalidToken, "unknown key id")
	if n := srv.hits.Load() - before; n != 1 {
		t.Errorf("an unknown kid fetched the set %d times, want 1", n)
	}
	start := time.Now()
	for range 20 {
		expect(t, v, "unknown kid again", signKid(t, rsaK[1].method(), rsaK[1].priv, "r9", goodClaims()), schemas.CodeInvalidToken, "kid unknown")
	}
	if n := srv.hits.Load() - before; n != 1 {
		t.Errorf("unknown kids within the refresh interval fetched the set %d times in all, want 1", n)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("rate-limited unknown kids took %s: they must be refused at once", d)
	}
}

func TestJWKSUnknownKIDRefresh(t *testing.T) {
	rsaK, _, _ := testKeys(t)
	srv := newJWKSServer(t)
	srv.set(t, map[string]any{"k1": rsaK[0].public()})
	v := newTestJWKSVerifier(t, srv.URL, JWKSOptions{Refresh: time.Hour, UnknownKIDRefresh: 300 * time.Millisecond})
	next := signKid(t, rsaK[1].method(), rsaK[1].priv, "k2", goodClaims())
	expect(t, v, "kid not published yet", next, schemas.CodeInvalidToken, "unknown key id")

	// Rotation: the issuer publishes k2 and starts signing with it. The
	// first token naming it (once the rate limit allows) fetches the set.
	srv.set(t, map[string]any{"k1": rsaK[0].public(), "k2": rsaK[1].public()})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := v.Verify(next); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("new kid still refused: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	expect(t, v, "old kid still served", signKid(t, rsaK[0].method(), rsaK[0].priv, "k1", goodClaims()), "", "")
}

func TestJWKSBackgroundRefresh(t *testing.T) {
	_, ecK, _ := testKeys(t)
	srv := newJWKSServer(t)
	srv.set(t, map[string]any{"old": ecK[0].public()})
	v := newTestJWKSVerifier(t, srv.URL, JWKSOptions{Refresh: 100 * time.Millisecond, UnknownKIDRefresh: time.Hour})
	oldTok := signKid(t, ecK[0].method(), ecK[0].priv, "old", goodClaims())
	expect(t, v, "old key", oldTok, "", "")

	// The issuer rotates: the old key is withdrawn, the new one published.
	// Tokens without a kid (checked against the known keys, no fetch)
	// follow the background refresh.
	srv.set(t, map[string]any{"new": ecK[1].public()})
	newNoKid := signKid(t, ecK[1].method(), ecK[1].priv, "", goodClaims())
	oldNoKid := signKid(t, ecK[0].method(), ecK[0].priv, "", goodClaims())
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, errNew := v.Verify(newNoKid)
		_, errOld := v.Verify(oldNoKid)
		if errNew == nil && errOld != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after rotation: new key %v, old key %v", errNew, errOld)
		}
		time.Sleep(50 * time.Millisecond)
	}
	expect(t, v, "withdrawn kid", oldTok, schemas.CodeInvalidToken, "")
}

func TestJWKSUnreachableAtStart(t *testing.T) {
	rsaK, _, _ := testKeys(t)
	srv := newJWKSServer(t)
	url := srv.URL
	srv.Close()
	v := newTestJWKSVerifier(t, url, JWKSOptions{Refresh: time.Hour, UnknownKIDRefresh: time.Hour, Timeout: time.Second})
	expect(t, v, "no keys yet", signKid(t, rsaK[0].method(), rsaK[0].priv, "k1", goodClaims()), schemas.CodeInvalidToken, "")
}

// TestJWKSTooLarge: a key set past maxJWKSBytes is not read to its end
// and not used.
func TestJWKSTooLarge(t *testing.T) {
	_, ecK, _ := testKeys(t)
	srv := newJWKSServer(t)
	srv.set(t, map[string]any{"k": ecK[0].public()})
	srv.mu.Lock()
	srv.body = append(srv.body[:len(srv.body)-1], []byte(`,"pad":"`+strings.Repeat("A", maxJWKSBytes)+`"}`)...)
	srv.mu.Unlock()
	v := newTestJWKSVerifier(t, srv.URL, JWKSOptions{Refresh: time.Hour, UnknownKIDRefresh: time.Hour, Log: slog.New(slog.DiscardHandler)})
	expect(t, v, "key from an oversized set", signKid(t, ecK[0].method(), ecK[0].priv, "k", goodClaims()), schemas.CodeInvalidToken, "")

	srv.set(t, map[string]any{"k": ecK[0].public()})
	v = newTestJWKSVerifier(t, srv.URL, JWKSOptions{Refresh: time.Hour, UnknownKIDRefresh: time.Hour})
	expect(t, v, "same key, set of normal size", signKid(t, ecK[0].method(), ecK[0].priv, "k", goodClaims()), "", "")
}
