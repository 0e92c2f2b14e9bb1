package connector

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/kelseyhightower/envconfig"

	"github.com/roomstream/roomstream/schemas"
)

// testKey is a private key of one kind, with the algorithm it signs.
type testKey struct {
	alg  string
	priv crypto.Signer
}

func (k testKey) method() jwt.SigningMethod { return jwt.GetSigningMethod(k.alg) }
func (k testKey) public() crypto.PublicKey  { return k.priv.Public() }

var (
	keysOnce sync.Once
	rsaKeys  [2]testKey
	ecKeys   [2]testKey
	edKeys   [2]testKey
)

// testKeys returns two keys of each kind, generated once per test binary.
func testKeys(t testing.TB) (rsaK, ecK, edK [2]testKey) {
	t.Helper()
	keysOnce.Do(func() {
		for i := range 2 {
			r, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			e, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				panic(err)
			}
			_, d, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				panic(err)
			}
			rsaKeys[i], ecKeys[i], edKeys[i] = testKey{"RS256", r}, testKey{"ES256", e}, testKey{"EdDSA", d}
		}
	})
	return rsaKeys, ecKeys, edKeys
}

func publicPEM(t testing.TB, keys ...crypto.PublicKey) []byte {
	t.Helper()
	var out []byte
	for _, k := range keys {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)
	}
	return out
}

func privatePEM(t testing.TB, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func goodClaims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"sub": "alice", "name": "Alice", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
}

// signKid signs claims with key k, naming kid in the header when set.
func signKid(t testing.TB, method jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// expect checks the outcome of verifying token: accepted as alice (code
// ""), or refused with code and a message containing want.
func expect(t *testing.T, v *Verifier, name, token string, code schemas.Code, want string) {
	t.Helper()
	id, err := v.Verify(token)
	switch {
	case code == "" && err != nil:
		t.Errorf("%s: refused: %v", name, err)
	case code == "" && id.UserID != "alice":
		t.Errorf("%s: user %q", name, id.UserID)
	case code != "" && err == nil:
		t.Errorf("%s: accepted as %+v", name, id)
	case code != "" && (err.Code != code || !strings.Contains(err.Message, want)):
		t.Errorf("%s: %s %q, want %s containing %q", name, err.Code, err.Message, code, want)
	}
}

func TestPublicKeyVerifierPerAlgorithm(t *testing.T) {
	rsaK, ecK, edK := testKeys(t)
	for _, pair := range [][2]testKey{rsaK, ecK, edK} {
		k, other := pair[0], pair[1]
		t.Run(k.alg, func(t *testing.T) {
			pemBytes := publicPEM(t, k.public())
			keys, err := ParsePublicKeys(pemBytes)
			if err != nil {
				t.Fatal(err)
			}
			v, err := NewPublicKeyVerifier(keys, VerifierOptions{})
			if err != nil {
				t.Fatal(err)
			}
			expired := goodClaims()
			expired["exp"] = time.Now().Add(-time.Minute).Unix()
			none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, goodClaims()).SignedString(jwt.UnsafeAllowNoneSignatureType)

			expect(t, v, "valid", signKid(t, k.method(), k.priv, "", goodClaims()), "", "")
			expect(t, v, "valid with any kid", signKid(t, k.method(), k.priv, "some-kid", goodClaims()), "", "")
			expect(t, v, "expired", signKid(t, k.method(), k.priv, "", expired), schemas.CodeExpiredToken, "expired")
			expect(t, v, "wrong key of the same kind", signKid(t, k.method(), other.priv, "", goodClaims()), schemas.CodeInvalidToken, "signature")
			// Algorithm confusion: the public key's bytes used as an HMAC
			// secret (what a verifier that takes the key for the token's
			// alg would accept).
			expect(t, v, "HS256 with the public PEM as secret", signKid(t, jwt.SigningMethodHS256, pemBytes, "", goodClaims()), schemas.CodeInvalidToken, "HS256 not accepted")
			der, _ := x509.MarshalPKIXPublicKey(k.public())
			expect(t, v, "HS256 with the public DER as secret", signKid(t, jwt.SigningMethodHS256, der, "", goodClaims()), schemas.CodeInvalidToken, "HS256 not accepted")
			expect(t, v, "alg none", none, schemas.CodeInvalidToken, "not accepted")
			for _, o := range [][2]testKey{rsaK, ecK, edK} {
				if o[0].alg != k.alg {
					expect(t, v, "token of another algorithm "+o[0].alg, signKid(t, o[0].method(), o[0].priv, "", goodClaims()), schemas.CodeInvalidToken, o[0].alg+" not accepted")
				}
			}
		})
	}
}

func TestPublicKeyVerifierSeveralKeys(t *testing.T) {
	rsaK, ecK, edK := testKeys(t)
	keys, err := ParsePublicKeys(publicPEM(t, rsaK[0].public(), rsaK[1].public(), ecK[0].public(), edK[0].public()))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 4 {
		t.Fatalf("%d keys, want 4", len(keys))
	}
	v, err := NewPublicKeyVerifier(keys, VerifierOptions{Issuer: "auth.example", Audience: "rooms"})
	if err != nil {
		t.Fatal(err)
	}
	c := goodClaims()
	c["iss"], c["aud"] = "auth.example", "rooms"
	for _, k := range []testKey{rsaK[0], rsaK[1], ecK[0], edK[0]} {
		expect(t, v, "key "+k.alg, signKid(t, k.method(), k.priv, "", c), "", "")
	}
	expect(t, v, "key not in the file", signKid(t, ecK[1].method(), ecK[1].priv, "", c), schemas.CodeInvalidToken, "signature")
	c["aud"] = "other"
	expect(t, v, "wrong audience", signKid(t, rsaK[0].method(), rsaK[0].priv, "", c), schemas.CodeInvalidToken, "audience")
}

func TestParsePublicKeysErrors(t *testing.T) {
	rsaK, ecK, _ := testKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good := publicPEM(t, ecK[0].public())
	damaged := strings.Replace(string(good), "\n", "\n!!", 2)
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "no PEM block"},
		{"not PEM", []byte("hello"), "no PEM block"},
		{"private key", privatePEM(t, rsaK[0].priv), "PRIVATE KEY: give the connector only the public key"},
		{"private key after a public one", append(append([]byte{}, good...), privatePEM(t, ecK[0].priv)...), "PEM block 2 is a PRIVATE KEY"},
		{"damaged base64", []byte(damaged), "damaged"},
		{"truncated", good[:len(good)-30], "damaged"},
		{"bad DER", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{0x30, 0x03, 1, 2, 3}}), "PEM block 1 (PUBLIC KEY)"},
		{"other block", pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{1}}), `"EC PARAMETERS"`},
		{"small RSA key", publicPEM(t, small.Public()), "1024 bits"},
		{"P-224", publicPEM(t, p224.Public()), "P-224"},
	}
	for _, tt := range tests {
		keys, err := ParsePublicKeys(tt.data)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %d keys, err %v; want an error containing %q", tt.name, len(keys), err, tt.want)
		}
	}
}

func TestSignTokenWithPrivateKey(t *testing.T) {
	rsaK, ecK, edK := testKeys(t)
	for _, k := range []testKey{rsaK[0], ecK[0], edK[0]} {
		sk, err := ParseSigningKey(privatePEM(t, k.priv))
		if err != nil {
			t.Fatalf("%s: %v", k.alg, err)
		}
		if sk.Method.Alg() != k.alg {
			t.Errorf("%s key signs %s", k.alg, sk.Method.Alg())
		}
		sk.KID = "k1"
		tok, err := SignToken(sk, TokenClaims{UserID: "bob", UserName: "Bob", Issuer: "auth.example", Audience: "rooms", TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		keys, _ := ParsePublicKeys(publicPEM(t, k.public()))
		v, _ := NewPublicKeyVerifier(keys, VerifierOptions{Issuer: "auth.example", Audience: "rooms"})
		if id, verr := v.Verify(tok); verr != nil || id.UserID != "bob" || id.UserName != "Bob" {
			t.Errorf("%s: %+v %v", k.alg, id, verr)
		}
	}
	sec1, _ := x509.MarshalECPrivateKey(ecK[0].priv.(*ecdsa.PrivateKey))
	if sk, err := ParseSigningKey(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})); err != nil || sk.Method.Alg() != "ES256" {
		t.Errorf("SEC 1 EC key: %v %v", sk.Method, err)
	}
	if _, err := ParseSigningKey(publicPEM(t, ecK[0].public())); err == nil {
		t.Error("a public key was taken for a signing key")
	}
	if _, err := ParseSigningKey([]byte("nope")); err == nil {
		t.Error("garbage was taken for a signing key")
	}
}

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

func TestServerUsesConfiguredKeys(t *testing.T) {
	rsaK, _, _ := testKeys(t)
	dir := t.TempDir()
	pub := filepath.Join(dir, "pub.pem")
	if err := os.WriteFile(pub, publicPEM(t, rsaK[0].public()), 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	s := New(Config{JWTPublicKeys: pub}, nil, log, nil)
	expect(t, s.verifier, "file key", signKid(t, rsaK[0].method(), rsaK[0].priv, "", goodClaims()), "", "")
	expect(t, s.verifier, "HS256", signKid(t, jwt.SigningMethodHS256, []byte(testSecret), "", goodClaims()), schemas.CodeInvalidToken, "not accepted")

	// A file gone between Validate and New: every token is refused and
	// Run says why.
	s = New(Config{JWTPublicKeys: filepath.Join(dir, "gone.pem")}, nil, log, nil)
	expect(t, s.verifier, "no keys", signKid(t, rsaK[0].method(), rsaK[0].priv, "", goodClaims()), schemas.CodeInvalidToken, "could not be loaded")
	if err := s.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "ROOMSTREAM_JWT_PUBLIC_KEY_FILE") {
		t.Errorf("Run: %v", err)
	}
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
