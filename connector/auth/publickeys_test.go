package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

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
