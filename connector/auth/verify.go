package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/roomstream/roomstream/schemas"
)

// MaxTokenLen bounds the tokens Verify parses at all: a longer one is
// refused before it is decoded.
const MaxTokenLen = 8 << 10

// Identity is who a verified token says the client is.
type Identity struct {
	UserID   string
	UserName string
	Expires  time.Time
	// IssuedAt is the token's iat (zero when it has none): tokens issued
	// before a revocation (HTTP API) are refused.
	IssuedAt time.Time
	// Rooms is the token's `rooms` claim, parsed and checked.
	Rooms RoomGrant
	// Claims is the token's payload as it was signed (a JSON object), for
	// a backend that decides room access on claims of its own.
	Claims json.RawMessage
}

type claims struct {
	Name  string          `json:"name,omitempty"`
	Rooms json.RawMessage `json:"rooms,omitempty"`
	jwt.RegisteredClaims
}

// Verifier checks client tokens: exp required, sub is the user id and name
// the user name. Algorithms are pinned: HS256 with a shared secret, or the
// one algorithm each public key's type allows (see publickeys.go), so neither
// "none" nor a switch to another algorithm is accepted.
type Verifier struct {
	parser      *jwt.Parser
	keyfunc     jwt.Keyfunc
	algs        []string
	leeway      time.Duration
	maxLifetime time.Duration
}

// VerifierOptions are the claims checks every verifier makes.
type VerifierOptions struct {
	Issuer   string        // required iss when not empty
	Audience string        // required aud when not empty
	Leeway   time.Duration // clock skew allowed
	// MaxLifetime, when set, refuses tokens that live longer: exp - iat,
	// or exp - now for a token without iat. A revocation (HTTP API) lasts
	// a set time, so a token that outlives it would be accepted again
	// once the revocation is forgotten.
	MaxLifetime time.Duration
}

// NewVerifier returns a verifier for HS256 tokens signed with secret.
// issuer and audience are checked when not empty.
func NewVerifier(secret, issuer, audience string, leeway time.Duration) *Verifier {
	return NewHS256Verifier(secret, VerifierOptions{Issuer: issuer, Audience: audience, Leeway: leeway})
}

// NewHS256Verifier returns a verifier for HS256 tokens signed with secret,
// making the checks of o.
func NewHS256Verifier(secret string, o VerifierOptions) *Verifier {
	key := []byte(secret)
	kf := func(t *jwt.Token) (any, error) {
		if t.Method != jwt.SigningMethodHS256 {
			return nil, &keyError{"no key for " + t.Method.Alg()}
		}
		return key, nil
	}
	return newVerifier([]string{jwt.SigningMethodHS256.Alg()}, kf, o)
}

func newVerifier(algs []string, kf jwt.Keyfunc, o VerifierOptions) *Verifier {
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(algs),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(o.Leeway),
	}
	if o.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(o.Issuer))
	}
	if o.Audience != "" {
		opts = append(opts, jwt.WithAudience(o.Audience))
	}
	return &Verifier{parser: jwt.NewParser(opts...), keyfunc: kf, algs: algs, leeway: o.Leeway, maxLifetime: o.MaxLifetime}
}

// NewRefusingVerifier returns a verifier that refuses every token: the
// stand-in for a configuration whose keys could not be loaded (the caller
// reports why; clients are not told).
func NewRefusingVerifier() *Verifier {
	return newVerifier(asymmetricAlgs, func(*jwt.Token) (any, error) { return nil, &keyError{"the server's token keys could not be loaded"} }, VerifierOptions{})
}

// Verify checks token and returns the identity in it, or an error with code
// expired_token or invalid_token and a reason a person can read.
func (v *Verifier) Verify(token string) (Identity, *schemas.Error) {
	if token == "" {
		return Identity{}, schemas.NewError(schemas.CodeInvalidToken, "no token given")
	}
	if len(token) > MaxTokenLen {
		return Identity{}, schemas.Errorf(schemas.CodeInvalidToken, "token longer than %d bytes", MaxTokenLen)
	}
	var c claims
	tok, err := v.parser.ParseWithClaims(token, &c, v.keyfunc)
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return Identity{}, schemas.NewError(schemas.CodeExpiredToken, "token has expired")
		}
		if tok != nil && tok.Method != nil && !slices.Contains(v.algs, tok.Method.Alg()) {
			return Identity{}, schemas.Errorf(schemas.CodeInvalidToken, "token rejected: algorithm %s not accepted (%s only)",
				tok.Method.Alg(), strings.Join(v.algs, ", "))
		}
		return Identity{}, schemas.Errorf(schemas.CodeInvalidToken, "token rejected: %s", reason(err))
	}
	if c.Subject == "" {
		return Identity{}, schemas.NewError(schemas.CodeInvalidToken, "token has no sub (user id)")
	}
	if !schemas.ValidID(c.Subject) {
		return Identity{}, schemas.NewError(schemas.CodeInvalidToken, "token sub is not a valid user id")
	}
	name := c.Name
	if name == "" {
		name = c.Subject
	}
	if !schemas.ValidText(name, schemas.MaxNameLen) {
		return Identity{}, schemas.NewError(schemas.CodeInvalidToken, "token name is not valid text")
	}
	id := Identity{UserID: c.Subject, UserName: name, Expires: c.ExpiresAt.Time, Rooms: parseRooms(c.Rooms)}
	if c.IssuedAt != nil {
		id.IssuedAt = c.IssuedAt.Time
	}
	if e := v.checkLifetime(id); e != nil {
		return Identity{}, e
	}
	// The parser took the token apart already: its payload segment is
	// valid base64 (the signature was checked over it).
	if _, rest, ok := strings.Cut(tok.Raw, "."); ok {
		payload, _, _ := strings.Cut(rest, ".")
		id.Claims, _ = v.parser.DecodeSegment(payload)
	}
	return id, nil
}

// checkLifetime refuses a token that lives longer than MaxLifetime.
func (v *Verifier) checkLifetime(id Identity) *schemas.Error {
	if v.maxLifetime <= 0 {
		return nil
	}
	from, what := id.IssuedAt, "exp - iat"
	if from.IsZero() {
		from, what = time.Now(), "exp - now (no iat)"
	}
	if life := id.Expires.Sub(from); life > v.maxLifetime+v.leeway {
		return schemas.Errorf(schemas.CodeInvalidToken, "token rejected: it lives %s (%s), longer than this server's revocations last (%s); use shorter-lived tokens",
			life.Round(time.Second), what, fmtDuration(v.maxLifetime))
	}
	return nil
}

// fmtDuration writes whole hours as hours ("720h"), else as Go does.
func fmtDuration(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return d.String()
}

// keyError is a key lookup failure with a reason a person can read.
type keyError struct{ msg string }

func (e *keyError) Error() string { return e.msg }

// reason turns a jwt error into a short readable cause.
func reason(err error) string {
	var ke *keyError
	switch {
	case errors.As(err, &ke):
		return ke.msg
	case errors.Is(err, jwkset.ErrKeyNotFound):
		return "unknown key id (kid)"
	case errors.Is(err, keyfunc.ErrKeyfunc):
		// Also a kid still unknown while the key set may not be fetched
		// again yet (rate limit).
		return "no usable key for its key id (kid unknown, or its key is for another alg)"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "signature is invalid"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "no key to verify it (unknown kid or algorithm)"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		// "... token is missing required claim: iss claim is required"
		msg := err.Error()
		return "required claim missing: " + msg[strings.LastIndex(msg, ": ")+2:]
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token not valid yet"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token issued in the future"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	}
	return err.Error()
}
