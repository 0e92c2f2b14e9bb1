package workers

import (
	"context"
	"testing"
	"time"

	"github.com/roomstream/roomstream/infra/testredis"
	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// TestFencedPartitionIsRetaken: when a room holds a fence above the
// partition's current epoch (the epoch went back in a failover), the
// worker gives the partition up and takes it again with a newer token
// until it passes the fence, instead of stalling the partition for ever.
func TestFencedPartitionIsRetaken(t *testing.T) {
	rs := testredis.Start(t, nil)
	rdb := rs.Client()
	ctx := context.Background()
	keys := streams.NewKeys("w:")
	if err := rdb.HSet(ctx, keys.RoomApplied("r1"), "fence", 4).Err(); err != nil {
		t.Fatal(err)
	}
	_, c, _ := startWorker(t, rs)
	env := &streams.Envelope{Type: schemas.EventJoinRoom, RoomID: "r1", UserID: "u", UserName: "U", SocketID: "s", ConnectorID: "c1", At: time.Now()}
	if _, err := c.Append(ctx, env); err != nil {
		t.Fatal(err)
	}
	waitOutbound(t, c, "c1", 15*time.Second)
	p := streams.Partition("r1", 2)
	if epoch, _ := rdb.Get(ctx, keys.Epoch(p)).Int(); epoch < 4 {
		t.Errorf("applied under epoch %d, below the fence 4", epoch)
	}
}

// TestWorkerAppliesAndShutsDown: entries flow, and a stopped worker leaves
// its leases free at once.
func TestWorkerAppliesAndShutsDown(t *testing.T) {
	rs := testredis.Start(t, nil)
	rdb := rs.Client()
	ctx := context.Background()
	w, c, stop := startWorker(t, rs)
	if _, err := c.Append(ctx, &streams.Envelope{Type: schemas.EventJoinRoom, RoomID: "r2", UserID: "u", UserName: "U", SocketID: "s", ConnectorID: "c2", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	waitOutbound(t, c, "c2", 10*time.Second)
	// Partitions are taken one at a time: wait for the second, a while.
	for deadline := time.Now().Add(10 * time.Second); len(w.Owned()) != 2 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if len(w.Owned()) != 2 {
		t.Errorf("owns %v", w.Owned())
	}
	stop()
	w.Wait()
	for p := 0; p < 2; p++ {
		if n := rdb.Exists(ctx, c.Keys.Lease(p)).Val(); n != 0 {
			t.Errorf("lease of partition %d still held after shutdown", p)
		}
	}
}
