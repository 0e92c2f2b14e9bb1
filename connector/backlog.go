package connector

import (
	"context"
	"time"

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
	backlogs, err := s.c.Backlogs(ctx)
	if err != nil {
		return nil, err
	}
	over := make([]bool, n)
	for i := range min(n, len(backlogs)) {
		over[i] = backlogs[i] > s.cfg.MaxBacklog
	}
	return over, nil
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
