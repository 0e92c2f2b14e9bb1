package workers

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// reapConnectors removes the sockets of dead connectors (registered, and
// their heartbeat key expired) from their rooms.
func (w *Worker) reapConnectors(ctx context.Context, dead []string, now time.Time) {
	for _, id := range dead {
		if err := w.reap(ctx, id, now); err != nil {
			w.log.Warn("reap connector", "connector", id, "err", err)
		}
	}
}

// reap handles one dead connector: for each socket it hosted (and that did
// not move to another connector by recovering), a socket-disconnect goes
// to each room the socket may be in, through the room's partition, so
// user-left follows everything the socket did before. Then the socket's
// keys go, and the connector's outbound stream is scheduled for deletion
// after the recovery window. A crash half-way repeats the work, which is
// harmless: a second disconnect of a socket no longer in a room is a no-op.
func (w *Worker) reap(ctx context.Context, connector string, now time.Time) error {
	rdb := w.c.Redis()
	k := w.c.Keys
	sockets, err := rdb.SMembers(ctx, k.ConnectorSockets(connector)).Result()
	if err != nil {
		return err
	}
	moved := 0
	for _, sid := range sockets {
		info, err := rdb.HGetAll(ctx, k.Socket(sid)).Result()
		if err != nil {
			return err
		}
		won := false
		if host := info["connector"]; host == connector {
			if won, err = w.c.ClaimSocket(ctx, sid, connector, "", streams.SocketClosed); err != nil {
				return err
			}
		}
		if !won && info["connector"] != "" && info["state"] != streams.SocketClosed {
			// Recovered on another connector meanwhile: it only leaves
			// this one's socket set.
			moved++
			if err := w.c.UnlistSocket(ctx, connector, sid); err != nil {
				return err
			}
			continue
		}
		rooms, err := rdb.SMembers(ctx, k.SocketRooms(sid)).Result()
		if err != nil {
			return err
		}
		for _, room := range rooms {
			env := &streams.Envelope{Type: schemas.CmdDisconnect, RoomID: room, SocketID: sid, ConnectorID: connector,
				UserID: info["userId"], UserName: info["userName"], SessionID: info["sessionId"],
				Reason: schemas.ReasonConnectorLost, At: now}
			if _, err := w.c.Append(ctx, env); err != nil {
				return err
			}
		}
		if err := w.c.DeleteSocket(ctx, streams.ClosedSocket{ID: sid, UserID: info["userId"], PID: info["pid"], Connector: connector}); err != nil {
			return err
		}
	}
	// Schedule first, unregister second: a crash in between repeats the reap.
	_, err = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, k.GoneConnectors(), redis.Z{Score: float64(now.Add(w.c.Config().RecoveryWindow).UnixMilli()), Member: connector})
		p.SRem(ctx, k.Connectors(), connector)
		return nil
	})
	if err != nil {
		return err
	}
	w.m.reaped.Inc()
	w.log.Warn("connector gone: its sockets were removed from their rooms",
		"connector", connector, "sockets", len(sockets)-moved, "recovered_elsewhere", moved)
	return nil
}
