package containers

import (
	"context"
	"encoding/json"

	"github.com/roomstream/roomstream/e2e/testkit"
	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// WaitDrained waits until the workers have taken and acknowledged every
// inbound entry of every partition.
func (c *Cluster) WaitDrained(ctx context.Context) error {
	return testkit.WaitDrained(ctx, c.rdb, streams.NewKeys(""), c.opts.Partitions)
}

// ReadTruth reads every inbound partition and the dead letters.
func (c *Cluster) ReadTruth(ctx context.Context) (*testkit.Truth, error) {
	return testkit.ReadTruth(ctx, c.rdb, streams.NewKeys(""), c.opts.Partitions)
}

// JSProgressOf extracts the progress events of room the design client
// received.
func JSProgressOf(lines []JSLine, room string) []testkit.Key {
	var out []testkit.Key
	for _, l := range lines {
		if l.Kind != "event" || l.Name != schemas.EventFileUploadProgress || len(l.Args) == 0 {
			continue
		}
		var p schemas.FileUploadProgressPayload
		if json.Unmarshal(l.Args[0], &p) != nil || p.RoomID != room {
			continue
		}
		out = append(out, testkit.Key{User: p.UserID, Upload: p.UploadID, Bytes: p.BytesUploaded})
	}
	return out
}
