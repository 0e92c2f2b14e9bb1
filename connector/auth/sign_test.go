package auth

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"
)

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
