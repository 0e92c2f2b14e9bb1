package connector

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
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

// keyError is a key lookup failure with a reason a person can read.
type keyError struct{ msg string }

func (e *keyError) Error() string { return e.msg }

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

// jwksTimeout is the default bound of one JWKS fetch.
const jwksTimeout = 10 * time.Second

// JWKSOptions tune a JWKS verifier; zero values mean the defaults.
type JWKSOptions struct {
	// Refresh is how often the key set is fetched again in the
	// background (default 1h).
	Refresh time.Duration
	// UnknownKIDRefresh is the least time between the fetches that a token
	// with an unknown kid triggers (default 1m); meanwhile such tokens are
	// refused at once (when it is longer than Timeout; shorter, they may
	// wait for the next allowed fetch).
	UnknownKIDRefresh time.Duration
	// Timeout bounds one fetch (default 10s).
	Timeout time.Duration
	// Client fetches the key set (default: a client with Timeout).
	Client *http.Client
	// Log receives failed fetches (default slog.Default()).
	Log *slog.Logger
}

// NewJWKSVerifier returns a verifier whose keys come from the JSON Web Key
// Set at url, selected by the token's kid (a token without one is checked
// against every key of its algorithm). The set is fetched now and every
// opts.Refresh until ctx ends; a fetch that fails keeps the keys already
// known and is logged, so a connector starts even while the key server is
// away. A token naming an unknown kid fetches the set again, at most once
// per opts.UnknownKIDRefresh.
func NewJWKSVerifier(ctx context.Context, url string, opts JWKSOptions, o VerifierOptions) (*Verifier, error) {
	if opts.Refresh <= 0 {
		opts.Refresh = time.Hour
	}
	if opts.UnknownKIDRefresh <= 0 {
		opts.UnknownKIDRefresh = time.Minute
	}
	if opts.Timeout <= 0 {
		opts.Timeout = jwksTimeout
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: opts.Timeout, Transport: limitBody{http.DefaultTransport, maxJWKSBytes}}
	}
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{url}, keyfunc.Override{
		Client:          opts.Client,
		HTTPTimeout:     opts.Timeout,
		RefreshInterval: opts.Refresh,
		// Burst 1: the first unknown kid fetches at once, the next ones
		// within the interval are refused without waiting (the wait
		// budget is shorter than the interval) and without a fetch.
		RefreshUnknownKID: rate.NewLimiter(rate.Every(opts.UnknownKIDRefresh), 1),
		RateLimitWaitMax:  opts.Timeout,
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(_ context.Context, err error) {
				log.Warn("JWKS fetch failed; keeping the keys known before", "url", u, "err", err)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	return newVerifier(asymmetricAlgs, pinKeys(kf.Keyfunc), o), nil
}

// maxJWKSBytes bounds a fetched key set (a real one is a few KiB); a
// longer one fails to decode and the keys known before are kept.
const maxJWKSBytes = 1 << 20

// limitBody cuts response bodies after n bytes.
type limitBody struct {
	rt http.RoundTripper
	n  int64
}

func (l limitBody) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.rt.RoundTrip(r)
	if err == nil {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.LimitReader(resp.Body, l.n), resp.Body}
	}
	return resp, err
}

// pinKeys keeps only the keys of the type the token's alg is for (a JWKS
// may hold symmetric or other keys under any kid).
func pinKeys(inner jwt.Keyfunc) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		alg := t.Method.Alg()
		got, err := inner(t)
		if err != nil {
			return nil, err
		}
		if set, ok := got.(jwt.VerificationKeySet); ok {
			var fit jwt.VerificationKeySet
			for _, k := range set.Keys {
				if keyFits(alg, k) {
					fit.Keys = append(fit.Keys, k)
				}
			}
			if len(fit.Keys) == 0 {
				return nil, &keyError{"no " + alg + " key in the key set"}
			}
			return fit, nil
		}
		if !keyFits(alg, got) {
			return nil, &keyError{"the key named by kid is not an " + alg + " key"}
		}
		return got, nil
	}
}

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
