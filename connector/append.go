package connector

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/streams"
)

// appendBatch is the most inbound events appended in one pipeline.
const appendBatch = 256

// appenders is how many pipelines may be in flight at once.
const appenders = 4

// appendReq is one socket's event waiting to be appended.
type appendReq struct {
	env  *streams.Envelope
	id   string
	err  error
	done chan struct{}
}

// appendLoop appends the inbound events of every socket: it takes one
// request, adds those already waiting, and sends them in one pipeline.
// While a pipeline is in flight, the next requests gather, so under load
// many events share a round trip (fewer system calls here and in Redis) and
// alone an event goes at once. Each socket waits for its event before
// reading its next frame, so a socket's events keep their order.
func (s *Server) appendLoop(ctx context.Context) {
	batch := make([]*appendReq, 0, appendBatch)
	envs := make([]*streams.Envelope, 0, appendBatch)
	for {
		batch, envs = batch[:0], envs[:0]
		select {
		case <-ctx.Done():
			return
		case r := <-s.appends:
			batch = append(batch, r)
		}
	more:
		for len(batch) < appendBatch {
			select {
			case r := <-s.appends:
				batch = append(batch, r)
			default:
				break more
			}
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if len(batch) == 1 {
			// Alone: a plain XADD costs less than a pipeline of one.
			r := batch[0]
			r.id, r.err = s.c.Append(actx, r.env)
			close(r.done)
			cancel()
			continue
		}
		for _, r := range batch {
			envs = append(envs, r.env)
		}
		ids, errs := s.c.AppendBatch(actx, envs)
		cancel()
		for i, r := range batch {
			r.id, r.err = ids[i], errs[i]
			close(r.done)
		}
	}
}

// appendEvent appends one inbound event, batched with other sockets'
// events unless writes must wait for replicas.
func (s *Server) appendEvent(ctx context.Context, env *streams.Envelope) (string, error) {
	if s.c.Config().DurableReplicas > 0 || !s.appending.Load() {
		return s.c.Append(ctx, env)
	}
	r := &appendReq{env: env, done: make(chan struct{})}
	select {
	case s.appends <- r:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	select {
	case <-r.done:
		return r.id, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// appendRetrying appends env, and appends it again while Redis is
// unreachable, restarting or failing over, until ctx ends. Appending again
// is safe: env keeps its origin and seq, so when an earlier try was stored
// after all, the workers apply the event once. A client thus sees
// `unavailable` only when Redis stays away for the whole of ctx.
func (s *Server) appendRetrying(ctx context.Context, env *streams.Envelope) (string, error) {
	bo := streams.NewBackoff(50*time.Millisecond, 500*time.Millisecond)
	for {
		id, err := s.appendEvent(ctx, env)
		if err == nil || !temporary(err) {
			return id, err
		}
		s.m.appendRetries.Inc()
		if !bo.Sleep(ctx) {
			return "", err
		}
	}
}

// temporary tells whether an append may succeed if tried again soon:
// Redis is unavailable (streams.IsUnavailable: the connection failed,
// Redis is loading its data or a failover is under way, replicas did not
// confirm in time), and neither the caller's context ended (a deadline
// here is the caller's budget, or the append loop's of the same length,
// spent) nor the client was closed (the connector is stopping).
func temporary(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, redis.ErrClosed) {
		return false
	}
	return streams.IsUnavailable(err)
}
