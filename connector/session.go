package connector

import (
	"context"
	"time"

	"github.com/roomstream/roomstream/connector/auth"
	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

const (
	sessionTTL = 24 * time.Hour
	// resumeTTL is the lifetime of the design's temporary tokens; the
	// resume credential (the socket's pid) is one.
	resumeTTL = 15 * time.Minute
)

// limitError is a refusal by a limit (the client sees e).
type limitError struct{ e *schemas.Error }

func (l *limitError) Error() string { return l.e.Message }

// openSession writes the design's session and socket keys for a freshly
// authenticated socket, unless its user has MAX_CONNS_PER_USER sockets
// already, counted across connectors: the check and the socket's place
// in its user's set are one step in Redis, so simultaneous connects of
// one user cannot pass the limit together.
func (s *Server) openSession(so *socket) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if limit := s.cfg.MaxConnsPerUser; limit > 0 {
		added, n, err := s.c.AddUserSocket(ctx, so.ident.UserID, so.sid, limit, sessionTTL)
		if err != nil {
			return err
		}
		if !added {
			s.m.limited.WithLabelValues(string(limitConnsUser)).Inc()
			return &limitError{schemas.Errorf(schemas.CodeTooManyConnections, "user %s has %d connections already (at most %d)", so.ident.UserID, n, limit)}
		}
	}
	so.session = newID()
	err := s.c.OpenSocket(ctx, streams.NewSocket{ID: so.sid, Session: so.session, PID: so.pid, Connector: s.id,
		UserID: so.ident.UserID, UserName: so.ident.UserName, IssuedAtMs: iatMillis(so.ident), At: s.now(),
		TTL: sessionTTL, ResumeTTL: resumeTTL})
	if err != nil && s.cfg.MaxConnsPerUser > 0 {
		// Its place among the user's sockets is given back.
		if rerr := s.c.RemoveUserSocket(context.WithoutCancel(ctx), so.ident.UserID, so.sid); rerr != nil {
			s.log.Warn("give back a user's socket place", "user", so.ident.UserID, "socket", so.sid, "err", rerr)
		}
	}
	return err
}

// iatMillis is the token's iat as kept in socket:{id} ("iat", ms; 0 when
// the token had none): a recovery by pid alone is checked against
// revocations with it.
func iatMillis(id auth.Identity) int64 {
	if id.IssuedAt.IsZero() {
		return 0
	}
	return id.IssuedAt.UnixMilli()
}

// checkRevoked answers whether the token of ident may be used: an error
// for the client when it was revoked (HTTP API) or when Redis cannot tell.
func (s *Server) checkRevoked(ident auth.Identity) *schemas.Error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	revoked, err := s.c.Revoked(ctx, ident.UserID, ident.IssuedAt)
	if err != nil {
		s.log.Warn("check token revocation", "user", ident.UserID, "err", err)
		return schemas.NewError(schemas.CodeUnavailable, "")
	}
	if revoked {
		s.m.authFailures.WithLabelValues("revoked").Inc()
		return schemas.NewError(schemas.CodeInvalidToken, "the token was revoked; sign in again")
	}
	return nil
}
