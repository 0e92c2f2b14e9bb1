package auth

import (
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/roomstream/roomstream/schemas"
)

// SigningKey signs tokens (dev, tests and the token command; production
// tokens come from the application's auth service).
type SigningKey struct {
	Method jwt.SigningMethod
	Key    any    // []byte for HS256, else the private key
	KID    string // put in the token's header when not empty
}

// HS256Key is the signing key for an HS256 secret.
func HS256Key(secret string) SigningKey {
	return SigningKey{Method: jwt.SigningMethodHS256, Key: []byte(secret)}
}

// ParseSigningKey reads a private key PEM ("PRIVATE KEY" PKCS #8, "RSA
// PRIVATE KEY" or "EC PRIVATE KEY"); its type picks the algorithm as for
// verification.
func ParseSigningKey(data []byte) (SigningKey, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return SigningKey{}, errors.New("no PEM block found")
	}
	var key any
	var err error
	switch b.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		return SigningKey{}, fmt.Errorf("PEM block is a %q: expected PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY", b.Type)
	}
	if err != nil {
		return SigningKey{}, fmt.Errorf("%s: %v", b.Type, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return SigningKey{}, fmt.Errorf("unsupported private key type %T", key)
	}
	alg, err := keyAlg(signer.Public())
	if err != nil {
		return SigningKey{}, err
	}
	return SigningKey{Method: jwt.GetSigningMethod(alg), Key: key}, nil
}

// Sign returns an HS256 token for a user, valid for ttl (development and
// tests; production tokens come from the application's auth service).
func Sign(secret, userID, userName string, ttl time.Duration) (string, error) {
	return SignToken(HS256Key(secret), TokenClaims{UserID: userID, UserName: userName, TTL: ttl})
}

// TokenClaims are what SignToken puts in a token.
type TokenClaims struct {
	UserID, UserName string
	Issuer, Audience string // omitted when empty
	TTL              time.Duration
	// Rooms is the `rooms` claim: room ids and prefixes ending in * that
	// the holder may join where room access comes from claims (nil: no
	// claim).
	Rooms []string
}

// SignToken returns a token for c signed with k.
func SignToken(k SigningKey, c TokenClaims) (string, error) {
	if !schemas.ValidID(c.UserID) {
		return "", fmt.Errorf("user id %q is not valid: 1-%d of letters, digits and _-.:@|/+=~", c.UserID, schemas.MaxIDLen)
	}
	now := time.Now()
	rc := jwt.RegisteredClaims{
		Subject:   c.UserID,
		Issuer:    c.Issuer,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(c.TTL)),
	}
	if c.Audience != "" {
		rc.Audience = jwt.ClaimStrings{c.Audience}
	}
	cl := claims{Name: c.UserName, RegisteredClaims: rc}
	if c.Rooms != nil {
		if g := parseRooms(mustJSON(c.Rooms)); g.Invalid != "" {
			return "", fmt.Errorf("rooms claim: %s", g.Invalid)
		}
		cl.Rooms = mustJSON(c.Rooms)
	}
	t := jwt.NewWithClaims(k.Method, cl)
	if k.KID != "" {
		t.Header["kid"] = k.KID
	}
	return t.SignedString(k.Key)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
