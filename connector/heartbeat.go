package connector

import (
	"context"
	"time"
)

// heartbeat refreshes the connector's heartbeat key every third of its
// TTL (and with it looks which stream format every live process reads),
// and the resume tokens of live sockets every few minutes. A connector
// that cannot reach Redis reports not ready.
func (s *Server) heartbeat(ctx context.Context) {
	period := s.cfg.HeartbeatTTL / 3
	beat := time.NewTimer(period)
	defer beat.Stop()
	lastResume := time.Now()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-beat.C:
		}
		// After a failure, beat again soon: Redis may be back any moment and
		// workers must see us before they decide we are dead.
		next := period
		if failures > 0 {
			next = min(period, 250*time.Millisecond)
		}
		hctx, cancel := context.WithTimeout(ctx, period)
		reregistered, err := s.c.Heartbeat(hctx, s.id, s.cfg.HeartbeatTTL)
		if err == nil {
			s.advertise(hctx)
			s.c.FollowFormat(hctx, s.log)
		}
		cancel()
		if err != nil {
			failures++
			s.log.Warn("heartbeat failed", "err", err, "failures", failures)
			if failures >= 2 {
				s.ready.Store(false)
			}
			beat.Reset(min(period, 250*time.Millisecond))
			continue
		}
		beat.Reset(next)
		if failures > 0 {
			s.log.Info("heartbeat restored")
		}
		if reregistered {
			// A worker declared us dead while we could not reach Redis, and
			// removed our sockets from their rooms: their state is gone, so
			// send the clients away to start afresh.
			s.log.Error("this connector was declared dead while cut off from Redis; dropping its connections")
			s.evictAll()
		}
		failures = 0
		s.ready.Store(true)
		if time.Since(lastResume) > resumeTTL/3 {
			lastResume = time.Now()
			s.refreshResume(ctx)
		}
	}
}

// refreshResume keeps the resume tokens of connected sockets alive.
func (s *Server) refreshResume(ctx context.Context) {
	s.mu.RLock()
	pids := make([]string, 0, len(s.sockets))
	for _, so := range s.sockets {
		if so.pid != "" {
			pids = append(pids, so.pid)
		}
	}
	s.mu.RUnlock()
	if err := s.c.RefreshResume(ctx, pids, resumeTTL); err != nil {
		s.log.Warn("refresh resume tokens", "err", err)
	}
}
