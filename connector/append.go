package connector

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/streams"
)

// Appending inbound events. A socket's accepted events wait in its own
// queue (appendq.go), in the order it sent them, and only the first of
// them is being appended: the workers drop an event numbered below one
// they applied for its socket (streams.Envelope's origin and seq), so a
// later event must never be stored before an earlier one, retries
// included. The first events of all sockets go to the append loops, which
// send what is waiting in one pipeline: while a pipeline is in flight the
// next events gather, so under load many events share a round trip (fewer
// system calls here and in Redis) and alone an event goes at once.

// appendBatch is the most inbound events appended in one pipeline.
const appendBatch = 256

// appenders is how many pipelines may be in flight at once.
const appenders = 4

// appendTimeout is how long an event is tried while Redis is unavailable
// before its client is told `unavailable`.
const appendTimeout = 5 * time.Second

// appendReq is one socket's event waiting to be appended.
type appendReq struct {
	so  *socket
	env streams.Envelope
	// The packet's ack id, its event and room: what a refusal names.
	ackID    int64
	hasAck   bool
	event    string
	room     string
	deadline time.Time
	// refusals are the socket's refusals in a row before this event (the
	// count starts again when the event is queued, and goes on from them
	// should the event not be accepted after all).
	refusals int
	bo       streams.Backoff
	lastErr  error // why the last try failed
	done     bool
	err      error
}

// expired is why r was not appended in time.
func (r *appendReq) expired() error {
	if r.lastErr != nil {
		return r.lastErr
	}
	return context.DeadlineExceeded
}

// appendQueue hands the append loops the events ready to be appended: the
// first waiting event of each socket that has any.
type appendQueue struct {
	mu    sync.Mutex
	ready []*appendReq
	loops int           // append loops running
	wake  chan struct{} // capacity 1: ready has events
}

// submit starts appending r, the first event of its socket's queue: in
// the append loops' next pipeline, or, when writes must wait for replicas
// (durable mode: one by one, each with its WAIT) or no loop runs, on its
// own goroutine.
func (s *Server) submit(r *appendReq) {
	q := &s.appends
	if s.cfg.DurableReplicas == 0 {
		q.mu.Lock()
		if q.loops > 0 {
			q.ready = append(q.ready, r)
			q.mu.Unlock()
			select {
			case q.wake <- struct{}{}:
			default:
			}
			return
		}
		q.mu.Unlock()
	}
	go s.appendAlone(r)
}

// take moves up to appendBatch ready events to dst, and wakes another
// loop when some are left.
func (q *appendQueue) take(dst []*appendReq) []*appendReq {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(len(q.ready), appendBatch)
	dst = append(dst, q.ready[:n]...)
	rest := copy(q.ready, q.ready[n:])
	clear(q.ready[rest:])
	q.ready = q.ready[:rest]
	if rest > 0 {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	return dst
}

// appendLoop appends the events the sockets submit, in pipelines of what
// is waiting, until ctx ends. The last loop to stop hands what is left
// to goroutines of their own.
func (s *Server) appendLoop(ctx context.Context) {
	q := &s.appends
	q.mu.Lock()
	q.loops++
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		q.loops--
		var left []*appendReq
		if q.loops == 0 {
			left, q.ready = q.ready, nil
		}
		q.mu.Unlock()
		for _, r := range left {
			go s.appendAlone(r)
		}
	}()
	batch := make([]*appendReq, 0, appendBatch)
	envs := make([]*streams.Envelope, 0, appendBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		}
		for {
			batch = q.take(batch[:0])
			if len(batch) == 0 {
				break
			}
			s.appendPipeline(ctx, batch, envs[:0])
			clear(batch)
		}
	}
}

// appendPipeline sends one pipeline (a plain XADD for one event: it costs
// less than a pipeline of one).
func (s *Server) appendPipeline(ctx context.Context, batch []*appendReq, envs []*streams.Envelope) {
	now := time.Now()
	live := batch[:0]
	for _, r := range batch {
		if !now.Before(r.deadline) {
			// Its time ran out while it waited (behind its socket's
			// earlier events, or for its next try).
			r.so.appendDone(r, r.expired())
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), appendTimeout)
	defer cancel()
	if len(live) == 1 {
		_, err := s.c.Append(actx, &live[0].env)
		s.tried(live[0], err)
		return
	}
	for _, r := range live {
		envs = append(envs, &r.env)
	}
	_, errs := s.c.AppendBatch(actx, envs)
	clear(envs)
	for i, r := range live {
		s.tried(r, errs[i])
	}
}

// tried settles one try of r: done, or tried again after a pause while
// Redis is unavailable and r's time lasts. The socket's later events wait
// meanwhile.
func (s *Server) tried(r *appendReq, err error) {
	if err != nil && temporary(err) {
		if left := time.Until(r.deadline); left > 0 {
			s.m.appendRetries.Inc()
			r.lastErr = err
			time.AfterFunc(min(r.bo.Next(), left), func() { s.submit(r) })
			return
		}
	}
	r.so.appendDone(r, err)
}

// appendAlone appends r on its own, tried again while Redis is unavailable
// until r's time runs out.
func (s *Server) appendAlone(r *appendReq) {
	ctx, cancel := context.WithDeadline(context.Background(), r.deadline)
	_, err := s.appendRetrying(ctx, &r.env)
	cancel()
	r.so.appendDone(r, err)
}

// appendRetrying appends env, and appends it again while Redis is
// unreachable, restarting or failing over, until ctx ends. Appending again
// is safe: env keeps its origin and seq, so when an earlier try was stored
// after all, the workers apply the event once. A client thus sees
// `unavailable` only when Redis stays away for the whole of ctx.
func (s *Server) appendRetrying(ctx context.Context, env *streams.Envelope) (string, error) {
	bo := streams.NewBackoff(50*time.Millisecond, 500*time.Millisecond)
	for {
		id, err := s.c.Append(ctx, env)
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
