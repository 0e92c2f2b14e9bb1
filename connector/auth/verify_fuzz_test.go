package auth

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/roomstream/roomstream/schemas"
)

// FuzzAuthenticate feeds arbitrary `authenticate` payloads through
// schemas.ParseAuthenticate and every kind of verifier (HS256, public
// keys, a JWKS): no panic, and always either an identity with a valid user
// or an error with a known code and a reason.
func FuzzAuthenticate(f *testing.F) {
	rsaK, ecK, edK := testKeys(f)
	keys, err := ParsePublicKeys(publicPEM(f, rsaK[0].public(), ecK[0].public(), edK[0].public()))
	if err != nil {
		f.Fatal(err)
	}
	pemV, err := NewPublicKeyVerifier(keys, VerifierOptions{})
	if err != nil {
		f.Fatal(err)
	}
	srv := newJWKSServer(f)
	srv.set(f, map[string]any{"r": rsaK[0].public(), "e": ecK[0].public(), "d": edK[0].public(), "h": []byte(testSecret)})
	jwksV, err := NewJWKSVerifier(f.Context(), srv.URL, JWKSOptions{Refresh: time.Hour, UnknownKIDRefresh: time.Hour}, VerifierOptions{})
	if err != nil {
		f.Fatal(err)
	}
	verifiers := []*Verifier{NewVerifier(testSecret, "", "", 0), pemV, jwksV}

	payload := func(tok string) []byte { b, _ := json.Marshal(map[string]string{"token": tok}); return b }
	hs, _ := Sign(testSecret, "alice", "Alice", time.Hour)
	f.Add(payload(hs))
	for _, k := range []testKey{rsaK[0], ecK[0], edK[0]} {
		f.Add(payload(signKid(f, k.method(), k.priv, "", goodClaims())))
		f.Add(payload(signKid(f, k.method(), k.priv, string(k.alg[0]|0x20), goodClaims())))
	}
	f.Add(payload(signKid(f, jwt.SigningMethodHS256, publicPEM(f, rsaK[0].public()), "r", goodClaims())))
	f.Add(payload(signKid(f, jwt.SigningMethodHS256, []byte(testSecret), "h", goodClaims())))
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, goodClaims()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	f.Add(payload(none))
	for _, s := range []string{`{}`, `{"token":""}`, `{"token":null}`, `{"token":1}`, `[]`, `"x"`, `{"token":"a.b.c"}`, `{"token":"x","extra":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, perr := schemas.ParseAuthenticate(raw)
		if perr != nil {
			if !perr.Code.Known() || perr.Message == "" || p != nil {
				t.Fatalf("ParseAuthenticate refusal %+v with %+v", perr, p)
			}
			return
		}
		for _, v := range verifiers {
			for _, tok := range []string{p.Token, string(raw)} {
				id, verr := v.Verify(tok)
				switch {
				case verr == nil && (!schemas.ValidID(id.UserID) || id.UserName == "" || id.Expires.IsZero()):
					t.Fatalf("accepted without a valid identity: %+v", id)
				case verr != nil && !reflect.DeepEqual(id, Identity{}):
					t.Fatalf("refused (%v) but returned %+v", verr, id)
				case verr != nil && (!verr.Code.Known() || verr.Message == ""):
					t.Fatalf("refusal without a known code and a reason: %+v", verr)
				case verr != nil && verr.Code != schemas.CodeInvalidToken && verr.Code != schemas.CodeExpiredToken:
					t.Fatalf("refusal code %s", verr.Code)
				}
			}
		}
	})
}
