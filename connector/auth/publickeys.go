package auth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// Asymmetric keys. A connector that verifies tokens with public keys
// cannot mint them: only the application's auth service holds the private
// key. Each key type verifies exactly one algorithm (RSA: RS256, ECDSA
// P-256/P-384/P-521: ES256/ES384/ES512, Ed25519: EdDSA), so a token cannot
// pick how its key is used: an HS256 token "signed" with the bytes of a
// public key, or "none", is refused before any key is looked at.

// minRSABits is the smallest RSA modulus accepted.
const minRSABits = 2048

// asymmetricAlgs are the algorithms a JWKS verifier accepts; which one a
// key verifies is fixed by its type (keyAlg).
var asymmetricAlgs = []string{"RS256", "ES256", "ES384", "ES512", "EdDSA"}

// keyAlg returns the one algorithm a public key verifies.
func keyAlg(key any) (string, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < minRSABits {
			return "", fmt.Errorf("RSA key of %d bits: at least %d are needed", n, minRSABits)
		}
		return "RS256", nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return "ES256", nil
		case elliptic.P384():
			return "ES384", nil
		case elliptic.P521():
			return "ES512", nil
		}
		return "", fmt.Errorf("ECDSA key on curve %s: P-256, P-384 or P-521 are supported", k.Curve.Params().Name)
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return "", errors.New("Ed25519 key of the wrong size")
		}
		return "EdDSA", nil
	case []byte:
		return "", errors.New("symmetric key: only public keys are accepted here")
	}
	return "", fmt.Errorf("unsupported key type %T: RSA, ECDSA or Ed25519 public keys are supported", key)
}

// keyFits reports whether key is the kind of key alg verifies with.
func keyFits(alg string, key any) bool {
	a, err := keyAlg(key)
	return err == nil && a == alg
}

// ParsePublicKeys returns every public key in PEM data: "PUBLIC KEY"
// (PKIX), "RSA PUBLIC KEY" (PKCS #1) or "CERTIFICATE" blocks. Private keys
// are refused: a connector needs only the public half.
func ParsePublicKeys(data []byte) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	rest := data
	for n := 1; ; n++ {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		var key any
		var err error
		switch b.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(b.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(b.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(b.Bytes); err == nil {
				key = cert.PublicKey
			}
		default:
			if strings.Contains(b.Type, "PRIVATE") {
				return nil, fmt.Errorf("PEM block %d is a %s: give the connector only the public key (openssl pkey -pubout)", n, b.Type)
			}
			return nil, fmt.Errorf("PEM block %d is a %q: expected PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE", n, b.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("PEM block %d (%s): %v", n, b.Type, err)
		}
		if _, err := keyAlg(key); err != nil {
			return nil, fmt.Errorf("PEM block %d (%s): %v", n, b.Type, err)
		}
		keys = append(keys, key)
	}
	if bytes.Contains(rest, []byte("-----BEGIN")) {
		return nil, fmt.Errorf("PEM block %d is damaged (no matching END line, or bad base64)", len(keys)+1)
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM block found")
	}
	return keys, nil
}

// LoadPublicKeys reads ParsePublicKeys' keys from a file.
func LoadPublicKeys(path string) ([]crypto.PublicKey, error) {
	data, err := readSmallFile(path)
	if err != nil {
		return nil, err
	}
	keys, err := ParsePublicKeys(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

func readSmallFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) > 1<<20 {
		return nil, fmt.Errorf("%s: larger than 1 MiB, not a key file", path)
	}
	return data, nil
}

// NewPublicKeyVerifier returns a verifier for tokens signed by the private
// halves of keys (from ParsePublicKeys); a token is checked against each
// key of the type its alg names. Its kid, if any, is not needed.
func NewPublicKeyVerifier(keys []crypto.PublicKey, o VerifierOptions) (*Verifier, error) {
	if len(keys) == 0 {
		return nil, errors.New("no public key given")
	}
	byAlg := map[string][]jwt.VerificationKey{}
	var algs []string
	for i, k := range keys {
		alg, err := keyAlg(k)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		if byAlg[alg] == nil {
			algs = append(algs, alg)
		}
		byAlg[alg] = append(byAlg[alg], k)
	}
	kf := func(t *jwt.Token) (any, error) {
		set := byAlg[t.Method.Alg()]
		if len(set) == 0 {
			return nil, &keyError{"no key for " + t.Method.Alg()}
		}
		return jwt.VerificationKeySet{Keys: set}, nil
	}
	return newVerifier(algs, kf, o), nil
}
