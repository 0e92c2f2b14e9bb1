package auth

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/roomstream/roomstream/schemas"
)

const testSecret = "0123456789abcdef-secret"

func signed(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerify(t *testing.T) {
	v := NewVerifier(testSecret, "", "", 5*time.Second)
	now := time.Now()
	good := jwt.MapClaims{"sub": "alice", "name": "Alice", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
	with := func(k string, val any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for kk, vv := range good {
			c[kk] = vv
		}
		if val == nil {
			delete(c, k)
		} else {
			c[k] = val
		}
		return c
	}
	noneToken, _ := jwt.NewWithClaims(jwt.SigningMethodNone, good).SignedString(jwt.UnsafeAllowNoneSignatureType)
	tests := []struct {
		name  string
		token string
		code  schemas.Code
		user  string
	}{
		{"valid", signed(t, jwt.SigningMethodHS256, []byte(testSecret), good), "", "alice"},
		{"no name falls back to sub", signed(t, jwt.SigningMethodHS256, []byte(testSecret), with("name", nil)), "", "alice"},
		{"expired", signed(t, jwt.SigningMethodHS256, []byte(testSecret), with("exp", now.Add(-time.Minute).Unix())), schemas.CodeExpiredToken, ""},
		{"wrong secret", signed(t, jwt.SigningMethodHS256, []byte("another-secret-123456"), good), schemas.CodeInvalidToken, ""},
		{"alg none", noneToken, schemas.CodeInvalidToken, ""},
		{"HS512 not allowed", signed(t, jwt.SigningMethodHS512, []byte(testSecret), good), schemas.CodeInvalidToken, ""},
		{"missing sub", signed(t, jwt.SigningMethodHS256, []byte(testSecret), with("sub", nil)), schemas.CodeInvalidToken, ""},
		{"missing exp", signed(t, jwt.SigningMethodHS256, []byte(testSecret), with("exp", nil)), schemas.CodeInvalidToken, ""},
		{"sub with braces", signed(t, jwt.SigningMethodHS256, []byte(testSecret), with("sub", "a{b}")), schemas.CodeInvalidToken, ""},
		{"name with control characters", signed(t, jwt.SigningMethodHS256, []byte(testSecret), with("name", "a\x00b")), schemas.CodeInvalidToken, ""},
		{"name with a bidi override (spoofs names in UIs)", signed(t, jwt.SigningMethodHS256, []byte(testSecret), with("name", "Ali\u202ece")), schemas.CodeInvalidToken, ""},
		{"issued in the future", signed(t, jwt.SigningMethodHS256, []byte(testSecret), with("iat", now.Add(time.Hour).Unix())), schemas.CodeInvalidToken, ""},
		{"not yet valid", signed(t, jwt.SigningMethodHS256, []byte(testSecret), with("nbf", now.Add(time.Hour).Unix())), schemas.CodeInvalidToken, ""},
		{"garbage", "a.b.c", schemas.CodeInvalidToken, ""},
		{"empty", "", schemas.CodeInvalidToken, ""},
		{"huge", strings.Repeat("a", 10000), schemas.CodeInvalidToken, ""},
	}
	for _, tt := range tests {
		id, err := v.Verify(tt.token)
		switch {
		case tt.code == "" && err != nil:
			t.Errorf("%s: rejected: %v", tt.name, err)
		case tt.code == "" && id.UserID != tt.user:
			t.Errorf("%s: user %q, want %q", tt.name, id.UserID, tt.user)
		case tt.code != "" && err == nil:
			t.Errorf("%s: accepted as %+v", tt.name, id)
		case tt.code != "" && (err.Code != tt.code || err.Message == ""):
			t.Errorf("%s: %v, want code %s with a reason", tt.name, err, tt.code)
		}
	}
}

func TestVerifyIssuerAudience(t *testing.T) {
	v := NewVerifier(testSecret, "auth.example", "rooms", 0)
	claims := jwt.MapClaims{"sub": "u", "exp": time.Now().Add(time.Hour).Unix(), "iss": "auth.example", "aud": "rooms"}
	if _, err := v.Verify(signed(t, jwt.SigningMethodHS256, []byte(testSecret), claims)); err != nil {
		t.Errorf("matching iss/aud rejected: %v", err)
	}
	claims["aud"] = "other"
	if _, err := v.Verify(signed(t, jwt.SigningMethodHS256, []byte(testSecret), claims)); err == nil || !strings.Contains(err.Message, "audience") {
		t.Errorf("wrong audience: %v", err)
	}
}

func TestSignRoundTrip(t *testing.T) {
	tok, err := Sign(testSecret, "bob", "Bob B.", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	id, verr := NewVerifier(testSecret, "", "", 0).Verify(tok)
	if verr != nil || id.UserID != "bob" || id.UserName != "Bob B." {
		t.Fatalf("round trip: %+v %v", id, verr)
	}
	if _, err := Sign(testSecret, "bad id", "x", time.Minute); err == nil {
		t.Error("Sign accepted an invalid user id")
	}
}

func FuzzVerify(f *testing.F) {
	tok, _ := Sign(testSecret, "alice", "Alice", time.Hour)
	f.Add(tok)
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.")
	f.Add("a.b.c")
	v := NewVerifier(testSecret, "", "", 0)
	f.Fuzz(func(t *testing.T, s string) {
		id, err := v.Verify(s)
		if err == nil && (id.UserID == "" || !schemas.ValidID(id.UserID)) {
			t.Fatalf("accepted a token without a valid user: %+v", id)
		}
		if err != nil && !err.Code.Known() {
			t.Fatalf("unknown code %q", err.Code)
		}
	})
}
