package connector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roomstream/roomstream/infra/testredis"
	"github.com/roomstream/roomstream/streams"
)

// TestDurableWaitKeepsAcknowledgedWrites: a master with one replica whose
// replication is held back (what the master sends never reaches it), then
// the master is killed (-9) and the replica promoted. The connector's
// append, as a socket's event goes through it, behaves per mode:
//
//   - async (ROOMSTREAM_DURABLE_REPLICAS=0): the event is acknowledged and
//     the failover loses it: the case durable mode exists for;
//   - durable (1 replica): the event is not acknowledged while the replica
//     lags (the append keeps trying until its deadline, then fails: the
//     client would get `unavailable`), and an event acknowledged before
//     the hold is on the promoted replica.
func TestDurableWaitKeepsAcknowledgedWrites(t *testing.T) {
	master := testredis.Start(t, nil)
	replica := testredis.StartReplica(t, master)
	ctx := context.Background()

	// newServer is a connector without HTTP or outbound reader: only its
	// append path runs.
	newServer := func(durable int) *Server {
		var cfg Config
		defaults(t, &cfg)
		cfg.RedisURL, cfg.JWTSecret, cfg.Partitions, cfg.KeyPrefix = master.URL(), testSecret, 4, "t:"
		cfg.DurableReplicas, cfg.DurableTimeout = durable, 200*time.Millisecond
		rdb, err := cfg.Connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = rdb.Close() })
		s := New(cfg, streams.New(rdb, cfg.Config), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
		// The append loops a running connector has (events of many
		// sockets share a pipeline), as Run starts them.
		lctx, cancel := context.WithCancel(ctx)
		t.Cleanup(cancel)
		runAppendLoops(t, lctx, s)
		return s
	}
	async, durable := newServer(0), newServer(1)
	var seq atomic.Uint64
	// appendEv appends an event as a socket's read loop has it appended,
	// for up to window.
	appendEv := func(s *Server, mark string, window time.Duration) error {
		env := streams.Envelope{Type: "lock-room", RoomID: "r1", UserID: "alice", SessionID: "s", SocketID: "so",
			Origin: "o1", Seq: seq.Add(1), At: time.Now(), Data: []byte(`{"roomId":"r1","reason":"` + mark + `"}`)}
		return appendVia(appendSocket(s), env, window)
	}
	// present tells whether the replica holds the event marked mark.
	key := streams.NewKeys("t:").Inbound(streams.Partition("r1", 4))
	present := func(mark string) bool {
		msgs, err := replica.Client().XRange(ctx, key, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		return strings.Contains(fmt.Sprint(msgs), `"reason":"`+mark+`"`)
	}

	if err := appendEv(durable, "durable-in-sync", 5*time.Second); err != nil {
		t.Fatalf("durable append with the replica in sync: %v", err)
	}
	replica.Hold()
	if err := appendEv(async, "async-lagging", 5*time.Second); err != nil {
		t.Fatalf("async append with the replica lagging: %v", err)
	}
	// Several sockets at once, as under load: the connector must not
	// batch them past the WAIT either.
	began := time.Now()
	const lagging = 8
	type result struct {
		i   int
		err error
	}
	results := make(chan result, lagging)
	for i := range lagging {
		go func() { results <- result{i, appendEv(durable, fmt.Sprintf("durable-lagging-%d", i), 2*time.Second)} }()
	}
	refused := map[int]bool{}
	for range lagging {
		r := <-results
		err := r.err
		if err == nil {
			continue
		}
		if !errors.Is(err, streams.ErrNotDurable) && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("durable append with the replica lagging: %v, want not durable", err)
		}
		refused[r.i] = true
		if len(refused) == 1 {
			t.Logf("durable append with the replica lagging: %v after %s", err, time.Since(began).Round(time.Millisecond))
		}
	}
	if len(refused) != lagging {
		t.Errorf("%d of %d durable appends acknowledged while the replica held none of them", lagging-len(refused), lagging)
	}

	master.Kill()
	replica.Promote()
	if !present("durable-in-sync") {
		t.Error("a write durable mode acknowledged is not on the promoted replica")
	}
	if present("async-lagging") {
		t.Error("the async write reached the replica: the test did not hold replication back, so it proves nothing")
	}
	for i := range lagging {
		switch there := present(fmt.Sprintf("durable-lagging-%d", i)); {
		case there && refused[i]:
			t.Errorf("durable write %d, refused while the replica lagged, reached it: replication was not held back", i)
		case !there && !refused[i]:
			t.Errorf("durable mode acknowledged write %d, and the failover lost it", i)
		}
	}
}
