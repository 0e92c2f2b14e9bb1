package testkit

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/e2e/sioclient"
	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// What a deployment accepted, read back from its inbound streams, and
// what its users must therefore have received: the suites that run
// processes (e2e) and containers (e2e/containers) check their clients
// against it.

// Key identifies one file-upload-progress event: who, which upload, how
// far (tests send strictly increasing bytesUploaded per upload).
type Key struct {
	User, Upload string
	Bytes        int64
}

func (k Key) String() string { return fmt.Sprintf("%s/%s@%d", k.User, k.Upload, k.Bytes) }

// Applied is one accepted progress event as the inbound stream holds it.
type Applied struct {
	ID  streams.ID
	Key Key
}

// Truth is what the system accepted, read from the inbound streams: the
// events a connector appended are exactly the accepted ones (an event the
// Redis client appended twice, recognised by its origin and seq, counts
// once, as the workers apply it once), and the stream order of a
// partition is the order its room's events were applied.
type Truth struct {
	// Progress lists each room's progress events in stream order.
	Progress map[string][]Applied
	// Joins is the join entry of each socket in each room.
	Joins map[string]map[string]streams.ID
	// Entries counts inbound entries by type.
	Entries map[string]int
	// Repeated counts entries that repeat an event appended before.
	Repeated int
	// Dead counts dead-lettered entries.
	Dead int64
}

// WaitDrained waits until the workers have taken and acknowledged every
// inbound entry of each of the partitions of keys.
func WaitDrained(ctx context.Context, rdb redis.UniversalClient, keys streams.Keys, partitions int) error {
	for {
		busy := ""
		for p := 0; p < partitions; p++ {
			stream := keys.Inbound(p)
			info, err := rdb.XInfoStream(ctx, stream).Result()
			if err != nil {
				if err == redis.Nil || strings.Contains(err.Error(), "no such key") {
					continue
				}
				busy = err.Error()
				break
			}
			groups, err := rdb.XInfoGroups(ctx, stream).Result()
			if err != nil || len(groups) == 0 {
				busy = fmt.Sprintf("%s: no group (%v)", stream, err)
				break
			}
			g := groups[0]
			if g.Pending > 0 || g.LastDeliveredID != info.LastGeneratedID {
				busy = fmt.Sprintf("%s: %d pending, delivered up to %s of %s", stream, g.Pending, g.LastDeliveredID, info.LastGeneratedID)
				if pend, err := rdb.XPending(ctx, stream, g.Name).Result(); err == nil && pend.Count > 0 {
					lease, _ := rdb.Get(ctx, keys.Lease(p)).Result()
					busy += fmt.Sprintf(" (pending %s..%s by %v; lease %q)", pend.Lower, pend.Higher, pend.Consumers, lease)
				}
				break
			}
		}
		if busy == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("inbound streams not drained: %s", busy)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ReadTruth reads every inbound partition of keys and the dead letters.
func ReadTruth(ctx context.Context, rdb redis.UniversalClient, keys streams.Keys, partitions int) (*Truth, error) {
	tr := &Truth{Progress: map[string][]Applied{}, Joins: map[string]map[string]streams.ID{}, Entries: map[string]int{}}
	seen := map[string]bool{} // origin/seq of the client events read
	for p := 0; p < partitions; p++ {
		start := "-"
		for {
			msgs, err := rdb.XRangeN(ctx, keys.Inbound(p), start, "+", 5000).Result()
			if err != nil {
				return nil, err
			}
			for _, m := range msgs {
				env, err := streams.DecodeEnvelope(m.ID, m.Values)
				if err != nil {
					return nil, err
				}
				if env.Seq > 0 {
					k := env.Origin + "/" + strconv.FormatUint(env.Seq, 10)
					if seen[k] {
						tr.Repeated++
						continue
					}
					seen[k] = true
				}
				tr.Entries[env.Type]++
				id := streams.MustID(m.ID)
				switch env.Type {
				case schemas.EventJoinRoom:
					if tr.Joins[env.RoomID] == nil {
						tr.Joins[env.RoomID] = map[string]streams.ID{}
					}
					if _, ok := tr.Joins[env.RoomID][env.SocketID]; !ok {
						tr.Joins[env.RoomID][env.SocketID] = id
					}
				case schemas.EventFileUploadProgress:
					var pl schemas.FileUploadProgressPayload
					if err := json.Unmarshal(env.Data, &pl); err != nil {
						return nil, err
					}
					tr.Progress[env.RoomID] = append(tr.Progress[env.RoomID], Applied{ID: id, Key: Key{env.UserID, pl.UploadID, pl.BytesUploaded}})
				}
			}
			if len(msgs) < 5000 {
				break
			}
			start = "(" + msgs[len(msgs)-1].ID
		}
		n, err := rdb.XLen(ctx, keys.DeadLetters(p)).Result()
		if err != nil && err != redis.Nil {
			return nil, err
		}
		tr.Dead += n
	}
	for room := range tr.Progress {
		list := tr.Progress[room]
		sort.SliceStable(list, func(i, j int) bool { return list[i].ID.Less(list[j].ID) })
	}
	return tr, nil
}

// Accepted reports whether the streams hold k.
func (tr *Truth) Accepted(room string, k Key) bool {
	for _, a := range tr.Progress[room] {
		if a.Key == k {
			return true
		}
	}
	return false
}

// Expected returns the progress events socket sid of room must have
// received: every one applied after its join.
func (tr *Truth) Expected(room, sid string) ([]Key, error) {
	join, ok := tr.Joins[room][sid]
	if !ok {
		return nil, fmt.Errorf("socket %s never joined room %s", sid, room)
	}
	var out []Key
	for _, a := range tr.Progress[room] {
		if join.Less(a.ID) {
			out = append(out, a.Key)
		}
	}
	return out, nil
}

// Receiver is what one socket received in one room.
type Receiver struct {
	Label string
	SID   string
	Room  string
	Got   []Key
}

// Tally adds up a check of many receivers.
type Tally struct {
	Receivers  int
	Expected   int // deliveries the streams call for
	Received   int // deliveries clients saw
	Lost       int // expected, never received
	Duplicated int // received more than once
	Unexpected int // received, never accepted (or before the join)
	OutOfOrder int // receivers whose sequence differs from the room's order
	Problems   []string
}

func (t Tally) String() string {
	return fmt.Sprintf("%d receivers: %d deliveries expected, %d received, %d lost, %d duplicated, %d unexpected, %d out of order",
		t.Receivers, t.Expected, t.Received, t.Lost, t.Duplicated, t.Unexpected, t.OutOfOrder)
}

// OK reports a perfect tally.
func (t Tally) OK() bool {
	return t.Lost == 0 && t.Duplicated == 0 && t.Unexpected == 0 && t.OutOfOrder == 0 && len(t.Problems) == 0
}

// Check compares what each receiver got with what the streams say it
// must have got: each event exactly once, in the room's order.
func (tr *Truth) Check(recvs []Receiver) Tally {
	var t Tally
	problem := func(format string, args ...any) {
		if len(t.Problems) < 20 {
			t.Problems = append(t.Problems, fmt.Sprintf(format, args...))
		}
	}
	for _, r := range recvs {
		t.Receivers++
		want, err := tr.Expected(r.Room, r.SID)
		if err != nil {
			problem("%s: %v", r.Label, err)
			continue
		}
		t.Expected += len(want)
		t.Received += len(r.Got)
		wantSet := map[Key]bool{}
		for _, k := range want {
			wantSet[k] = true
		}
		seen := map[Key]int{}
		var firstGot []Key
		for _, k := range r.Got {
			seen[k]++
			switch {
			case seen[k] > 1:
				t.Duplicated++
				problem("%s: %s received %d times", r.Label, k, seen[k])
			case !wantSet[k]:
				t.Unexpected++
				problem("%s: %s received but not expected (not accepted, or before the join)", r.Label, k)
			default:
				firstGot = append(firstGot, k)
			}
		}
		var kept []Key
		for _, k := range want {
			if seen[k] == 0 {
				t.Lost++
				problem("%s: %s lost", r.Label, k)
				continue
			}
			kept = append(kept, k)
		}
		for i := range kept {
			if firstGot[i] != kept[i] {
				t.OutOfOrder++
				problem("%s: out of order at %d: got %s, room order says %s", r.Label, i, firstGot[i], kept[i])
				break
			}
		}
	}
	return t
}

// ProgressOf extracts the progress events of room from Go client events.
func ProgressOf(evs []sioclient.Event, room string) []Key {
	var out []Key
	for _, ev := range evs {
		if ev.Name != schemas.EventFileUploadProgress {
			continue
		}
		var p schemas.FileUploadProgressPayload
		if ev.Decode(&p) != nil || p.RoomID != room {
			continue
		}
		out = append(out, Key{p.UserID, p.UploadID, p.BytesUploaded})
	}
	return out
}
