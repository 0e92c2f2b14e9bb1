package workers

import (
	"context"
	"testing"
	"time"

	"github.com/roomstream/roomstream/infra/testredis"
	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// TestDurableApplyWaitsForReplica: in durable mode a worker applies an
// entry only once the replica holds the state change: with replication
// held back, Apply fails with a temporary error (the entry stays pending
// and is applied again later) instead of succeeding; what it applied
// before the hold is on the replica once promoted. The async applier, on
// the same lagging master, succeeds and the failover loses its change.
func TestDurableApplyWaitsForReplica(t *testing.T) {
	master := testredis.Start(t, nil)
	replica := testredis.StartReplica(t, master)
	rdb := master.Client()
	applier := func(durable int) *harness {
		cfg := harnessConfig()
		cfg.DurableReplicas, cfg.DurableTimeout = durable, 200*time.Millisecond
		return harnessOn(t, rdb, cfg, time.Now(), time.Now)
	}
	durable, async := applier(1), applier(0)
	durable.apply(durable.env(alice, schemas.EventJoinRoom, "kept", nil, false))

	replica.Hold()
	async.apply(async.env(bob, schemas.EventJoinRoom, "lost", nil, false))
	_, err := durable.a.Apply(durable.ctx, 0, 1, durable.env(bob, schemas.EventJoinRoom, "refused", nil, false))
	if err == nil {
		t.Error("durable apply succeeded while the replica held none of it")
	} else if !streams.IsUnavailable(err) {
		t.Errorf("durable apply with the replica lagging: %v, want a temporary error (retried, never dead-lettered)", err)
	}

	master.Kill()
	replica.Promote()
	member := func(room, user string) bool {
		return replica.Client().SIsMember(context.Background(), "t:room:{"+room+"}:users", user).Val()
	}
	if !member("kept", "alice") {
		t.Error("a join durable mode applied is not on the promoted replica")
	}
	if member("lost", "bob") {
		t.Error("the async join reached the replica: replication was not held back, the test proves nothing")
	}
	if member("refused", "bob") {
		t.Error("the refused durable join reached the replica: replication was not held back")
	}
}
