package connector

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/roomstream/roomstream/schemas"
)

// maxTokenLen bounds the tokens we parse at all.
const maxTokenLen = 8 << 10

// Identity is who a verified token says the client is.
type Identity struct {
	UserID   string
	UserName string
	Expires  time.Time
	// IssuedAt is the token's iat (zero when it has none): tokens issued
	// before a revocation (HTTP API) are refused.
	IssuedAt time.Time
}

type claims struct {
	Name string `json:"name,omitempty"`
	jwt.RegisteredClaims
}

// Verifier checks client tokens: HS256 only (the algorithm is pinned, so
// neither "none" nor a switch to another algorithm is accepted), exp
// required, sub is the user id and name the user name.
type Verifier struct {
	secret []byte
	parser *jwt.Parser
}

// NewVerifier returns a verifier for tokens signed with secret. issuer and
// audience are checked when not empty.
func NewVerifier(secret, issuer, audience string, leeway time.Duration) *Verifier {
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
	}
	if issuer != "" {
		opts = append(opts, jwt.WithIssuer(issuer))
	}
	if audience != "" {
		opts = append(opts, jwt.WithAudience(audience))
	}
	return &Verifier{secret: []byte(secret), parser: jwt.NewParser(opts...)}
}

// Verify checks token and returns the identity in it, or an error with code
// expired_token or invalid_token and a reason a person can read.
func (v *Verifier) Verify(token string) (Identity, *schemas.Error) {
	if token == "" {
		return Identity{}, schemas.NewError(schemas.CodeInvalidToken, "no token given")
	}
	if len(token) > maxTokenLen {
		return Identity{}, schemas.Errorf(schemas.CodeInvalidToken, "token longer than %d bytes", maxTokenLen)
	}
	var c claims
	_, err := v.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return v.secret, nil })
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return Identity{}, schemas.NewError(schemas.CodeExpiredToken, "token has expired")
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
	id := Identity{UserID: c.Subject, UserName: name, Expires: c.ExpiresAt.Time}
	if c.IssuedAt != nil {
		id.IssuedAt = c.IssuedAt.Time
	}
	return id, nil
}

// reason turns a jwt error into a short readable cause.
func reason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "signature is invalid"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "signing method not allowed (HS256 only)"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "required claim missing (exp)"
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

// Sign returns an HS256 token for a user, valid for ttl (development and
// tests; production tokens come from the application's auth service).
func Sign(secret, userID, userName string, ttl time.Duration) (string, error) {
	if !schemas.ValidID(userID) {
		return "", fmt.Errorf("user id %q is not valid: 1-%d of letters, digits and _-.:@|/+=~", userID, schemas.MaxIDLen)
	}
	now := time.Now()
	c := claims{Name: userName, RegisteredClaims: jwt.RegisteredClaims{
		Subject:   userID,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
}
