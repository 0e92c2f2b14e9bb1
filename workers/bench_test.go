package workers

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/roomstream/roomstream/infra/testredis"
	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// BenchmarkApplyProgress measures the worker's apply of one
// file-upload-progress event in a room of ten members spread over two
// connectors, against a real redis-server: the room script, the progress
// hash and the outbound entries, as the partition loop does it.
// Functions: the room library, called with FCALL; scripts: the same
// code sent as scripts (EVALSHA), as on Redis without functions.
func BenchmarkApplyProgress(b *testing.B) {
	b.Run("functions", func(b *testing.B) { benchApplyProgress(b, false) })
	b.Run("scripts", func(b *testing.B) { benchApplyProgress(b, true) })
}

func benchApplyProgress(b *testing.B, scriptsOnly bool) {
	srv := testredis.Start(b, nil)
	rdb := srv.Client()
	c := streams.New(rdb, streams.Config{Partitions: 16, RecoveryWindow: 2 * time.Minute, KeyPrefix: "b:",
		InboundRetention: time.Hour, InboundMaxLen: 1000})
	a := NewApplier(c, 30*time.Second, 7*24*time.Hour, nil)
	a.scripts.noLib = scriptsOnly
	ctx := context.Background()
	start := time.Now().UnixMilli()
	seq := 0
	env := func(typ, user string, sock int, payload any) *streams.Envelope {
		seq++
		data, _ := json.Marshal(payload)
		return &streams.Envelope{ID: fmt.Sprintf("%d-%d", start, seq), Type: typ, RoomID: "room-42",
			UserID: user, UserName: "User " + user, SessionID: "sess-" + user, SocketID: fmt.Sprintf("sock-%d", sock),
			ConnectorID: fmt.Sprintf("c-%d", sock%2), Data: data, At: time.Now(),
			Origin: fmt.Sprintf("o-%d", sock), Seq: uint64(seq)}
	}
	for i := range 10 {
		u := fmt.Sprintf("user-%d", i)
		if _, err := a.Apply(ctx, 3, 1, env(schemas.EventJoinRoom, u, i, schemas.JoinRoomPayload{RoomID: "room-42", UserID: u})); err != nil {
			b.Fatal(err)
		}
	}
	progress := make([]*streams.Envelope, 10)
	for i := range progress {
		u := fmt.Sprintf("user-%d", i)
		s := int64(i)
		progress[i] = env(schemas.EventFileUploadProgress, u, i, schemas.FileUploadProgressPayload{
			FileID: "f-" + u, UploadID: "up-" + u, FileName: "holiday.mov", RoomID: "room-42", UserID: u,
			BytesUploaded: 5 << 20, TotalBytes: 100 << 20, Percentage: 5, Seq: &s, SentAt: &s})
	}
	rdb.ConfigResetStat(ctx)
	b.ReportAllocs()
	b.ResetTimer()
	defer func() {
		// What Redis spent per event (INFO commandstats: every command,
		// those inside the script included, and the script itself).
		info, err := rdb.Info(ctx, "commandstats").Result()
		if err != nil {
			b.Fatal(err)
		}
		var total, script float64
		for _, line := range strings.Split(info, "\n") {
			name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
			if !ok || !strings.HasPrefix(name, "cmdstat_") {
				continue
			}
			for _, kv := range strings.Split(rest, ",") {
				if v, ok := strings.CutPrefix(kv, "usec="); ok {
					f, _ := strconv.ParseFloat(v, 64)
					if name == "cmdstat_evalsha" || name == "cmdstat_fcall" {
						script = f
					} else if name != "cmdstat_config" && name != "cmdstat_info" {
						total += f
					}
				}
			}
		}
		// The script's time (FCALL, or EVALSHA where Redis has no
		// functions) includes the commands it calls.
		b.ReportMetric(script/float64(b.N), "redis-script-µs/op")
		b.ReportMetric(max(script, total)/float64(b.N), "redis-µs/op")
	}()
	for i := range b.N {
		e := *progress[i%10]
		seq++
		e.ID, e.Seq = fmt.Sprintf("%d-%d", start, seq), uint64(seq)
		out, err := a.Apply(ctx, 3, 1, &e)
		if err != nil || out.Status != "ok" {
			b.Fatalf("apply: %v %+v", err, out)
		}
	}
}
