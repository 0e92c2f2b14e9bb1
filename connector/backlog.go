package connector

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/streams"
)

// backlogEvery is how often a connector reads the workers' backlog.
const backlogEvery = time.Second

// watchBacklog reads, every second, how many inbound entries of each
// partition wait for the workers (not yet delivered to a worker, plus
// delivered and not acknowledged). A partition past MAX_BACKLOG refuses
// new events with `unavailable` until the workers catch up, so that
// stalled workers cannot make the inbound streams grow without bound.
func (s *Server) watchBacklog(ctx context.Context) {
	if s.cfg.MaxBacklog <= 0 {
		return
	}
	n := s.c.Partitions()
	s.backlogMu.Lock()
	s.backlogged = make([]bool, n)
	s.backlogMu.Unlock()
	t := time.NewTicker(backlogEvery)
	defer t.Stop()
	warned := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		over, err := s.readBacklog(ctx, n)
		if err != nil {
			if !warned && ctx.Err() == nil {
				s.log.Warn("cannot read the workers' backlog; events are not held back", "err", err)
				warned = true
			}
			continue
		}
		warned = false
		count := 0
		s.backlogMu.Lock()
		for p, o := range over {
			if o && !s.backlogged[p] {
				s.log.Warn("partition backlog past ROOMSTREAM_MAX_BACKLOG: refusing its new events until the workers catch up",
					"partition", p, "max", s.cfg.MaxBacklog)
			}
			s.backlogged[p] = o
			if o {
				count++
			}
		}
		s.backlogMu.Unlock()
		s.m.backlogged.Set(float64(count))
	}
}

// readBacklog tells which partitions are past the limit.
func (s *Server) readBacklog(ctx context.Context, n int) ([]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, backlogEvery)
	defer cancel()
	cmds := make([]*redis.XInfoGroupsCmd, n)
	_, err := s.c.Redis().Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range n {
			cmds[i] = p.XInfoGroups(ctx, s.c.Keys.Inbound(i))
		}
		return nil
	})
	over := make([]bool, n)
	for i, cmd := range cmds {
		groups, cerr := cmd.Result()
		if cerr != nil {
			if isNoStream(cerr) {
				continue // nothing appended yet
			}
			return nil, cerr
		}
		for _, g := range groups {
			if g.Name != streams.Group {
				continue
			}
			backlog := g.Pending
			if g.Lag > 0 {
				backlog += g.Lag
			}
			over[i] = backlog > s.cfg.MaxBacklog
		}
	}
	if err != nil && !isNoStream(err) {
		return nil, err
	}
	return over, nil
}

func isNoStream(err error) bool {
	return err != nil && (err.Error() == "ERR no such key" || err.Error() == "ERR no such key\n")
}

// backlogFull tells whether the partition of room refuses new events.
func (s *Server) backlogFull(room string) bool {
	if s.cfg.MaxBacklog <= 0 {
		return false
	}
	s.backlogMu.RLock()
	defer s.backlogMu.RUnlock()
	if len(s.backlogged) == 0 {
		return false
	}
	return s.backlogged[streams.Partition(room, len(s.backlogged))]
}
