package workers

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// ReasonLockHolderLeft is the reason of a room-unlocked the server sends
// when it releases the lock of a holder who left.
const ReasonLockHolderLeft = "lock holder left the room"

// janitor runs the deployment-wide chores on the one worker that holds the
// janitor lease: reaping dead connectors, releasing orphaned locks,
// deleting the streams of gone connectors, trimming inbound streams and
// removing idle consumers.
func (w *Worker) janitor(ctx context.Context) {
	ttl := 3 * w.cfg.ReapInterval
	if ttl < 3*time.Second {
		ttl = 3 * time.Second
	}
	var token int64
	var since time.Time // when this worker became the janitor
	var known []string  // the registered connectors of the last round
	reap := time.NewTicker(w.cfg.ReapInterval)
	defer reap.Stop()
	var lastTrim, lastGauges time.Time
	defer func() {
		if token != 0 {
			rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = w.c.ReleaseJanitor(rctx, w.id, token)
		}
	}()
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-reap.C:
			}
		}
		if token == 0 {
			t, err := w.c.AcquireJanitor(ctx, w.id, ttl)
			if err != nil || t == 0 {
				continue
			}
			token = t
			since = w.now()
			w.log.Info("janitor lease acquired", "token", token)
		}
		// One round trip renews the lease and reads what the chores
		// need; at idle that is all a janitor's tick costs.
		now := w.now()
		view, err := w.c.JanitorRound(ctx, w.id, token, ttl, now, 100, known)
		if err != nil {
			w.log.Warn("janitor round", "err", err)
			continue
		}
		if !view.Renewed {
			w.log.Warn("janitor lease lost")
			token = 0
			continue
		}
		// A new janitor (after a failover, or Redis coming back) gives
		// every connector one full heartbeat period to show up before
		// declaring it dead: their silence may have been Redis's.
		if now.Sub(since) >= w.cfg.ConnectorTimeout {
			w.reapConnectors(ctx, view.Dead, now)
		}
		known = view.Connectors
		w.expireLocks(ctx, view.OrphanLocks, now)
		w.dropGoneConnectors(ctx, view.GoneConnectors, now)
		if now.Sub(lastTrim) >= w.cfg.TrimInterval {
			lastTrim, lastGauges = now, now
			w.trim(ctx, now)
		} else if now.Sub(lastGauges) >= gaugeInterval {
			lastGauges = now
			w.refreshGauges(ctx)
		}
	}
}

// expireLocks releases the locks of rooms, whose holder left more than
// LockGrace ago (as the janitor's round read them), by
// appending lock-expire to the room's partition (so it is applied in
// order with the room's other events).
func (w *Worker) expireLocks(ctx context.Context, rooms []string, now time.Time) {
	key := w.c.Keys.OrphanLocks()
	if len(rooms) == 0 {
		return
	}
	for _, room := range rooms {
		env := &streams.Envelope{Type: schemas.CmdLockExpire, RoomID: room, Reason: ReasonLockHolderLeft, At: now}
		if _, err := w.c.Append(ctx, env); err != nil {
			w.log.Warn("queue lock expiry", "room", room, "err", err)
			return
		}
	}
	if err := w.c.Done(ctx, key, now, rooms...); err != nil {
		w.log.Warn("unschedule lock expiry", "err", err)
	}
}

// dropGoneConnectors deletes the outbound streams of connectors ids, which
// died more than a recovery window ago (nobody can resume from them any
// more), as the janitor's round read them.
func (w *Worker) dropGoneConnectors(ctx context.Context, ids []string, now time.Time) {
	key := w.c.Keys.GoneConnectors()
	if len(ids) == 0 {
		return
	}
	for _, id := range ids {
		if err := w.c.Redis().Del(ctx, w.c.Keys.Outbound(id), w.c.Keys.ConnectorSockets(id)).Err(); err != nil {
			w.log.Warn("delete stream of gone connector", "connector", id, "err", err)
			return
		}
		w.log.Info("deleted outbound stream of gone connector", "connector", id)
	}
	_ = w.c.Done(ctx, key, now, ids...)
}

// gaugeInterval is how often the janitor refreshes the pending and lag
// gauges between trims.
const gaugeInterval = 5 * time.Second

func (w *Worker) refreshGauges(ctx context.Context) {
	n := w.c.Partitions()
	cmds := make([]*redis.XInfoGroupsCmd, n)
	_, _ = w.c.Redis().Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range n {
			cmds[i] = p.XInfoGroups(ctx, w.c.Keys.Inbound(i))
		}
		return nil
	})
	for i, cmd := range cmds {
		w.setGauges(i, cmd)
	}
}

// refreshGauge sets partition p's pending and lag gauges from XINFO GROUPS.
func (w *Worker) refreshGauge(ctx context.Context, p int) {
	w.setGauges(p, w.c.Redis().XInfoGroups(ctx, w.c.Keys.Inbound(p)))
}

func (w *Worker) setGauges(p int, cmd *redis.XInfoGroupsCmd) {
	groups, err := cmd.Result()
	if err != nil {
		return
	}
	for _, g := range groups {
		if g.Name == streams.Group {
			label := strconv.Itoa(p)
			w.m.pending.WithLabelValues(label).Set(float64(g.Pending))
			w.m.lag.WithLabelValues(label).Set(float64(g.Lag))
		}
	}
}

// trim trims every inbound partition, refreshes the pending and lag
// gauges, and deletes consumers that are idle with nothing pending.
func (w *Worker) trim(ctx context.Context, now time.Time) {
	rdb := w.c.Redis()
	live, _ := rdb.ZRange(ctx, w.c.Keys.Workers(), 0, -1).Result()
	alive := map[string]bool{}
	for _, id := range live {
		alive[id] = true
	}
	for p := 0; p < w.c.Partitions(); p++ {
		key := w.c.Keys.Inbound(p)
		if n, err := w.c.TrimInbound(ctx, p, now); err != nil {
			w.log.Warn("trim partition", "partition", p, "err", err)
		} else if n > 0 {
			w.log.Debug("trimmed partition", "partition", p, "entries", n)
		}
		w.refreshGauge(ctx, p)
		consumers, err := rdb.XInfoConsumers(ctx, key, streams.Group).Result()
		if err != nil {
			continue
		}
		for _, c := range consumers {
			if c.Pending == 0 && !alive[c.Name] && c.Idle > time.Minute {
				if err := rdb.XGroupDelConsumer(ctx, key, streams.Group, c.Name).Err(); err == nil {
					w.log.Debug("deleted idle consumer", "partition", p, "consumer", c.Name)
				}
			}
		}
	}
}
