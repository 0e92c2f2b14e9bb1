package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/roomstream/roomstream/streams"
)

// FuzzImportLine feeds arbitrary bytes to the import's line reader and
// entry checks (everything before Redis): bad input is an error, never a
// panic.
func FuzzImportLine(f *testing.F) {
	f.Add([]byte(`{"partition":1,"id":"5-0","fields":{"v":"1","type":"join-room","room":"r1","at":"1"}}` + "\n"))
	f.Add([]byte(`{"partition":-1,"id":"0-0","fields":{}}`))
	f.Add([]byte("{\"end\":true,\"entries\":3}\n\n\n{"))
	f.Add([]byte(`{"partition":2,"id":"18446744073709551615-18446744073709551615","fields":{"room":"}{"},"deadLetter":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		im := &importer{r: New(nil, streams.Config{}, nil), keys: streams.NewKeys("fz:"),
			h: Header{Partitions: 4}, last: map[int]streams.ID{}}
		in := &lineReader{r: bufio.NewReader(bytes.NewReader(data))}
		for i := 0; i < 100; i++ {
			raw, err := in.next()
			if err != nil {
				return
			}
			var l importLine
			if json.Unmarshal(raw, &l) != nil || l.End {
				continue
			}
			if len(im.batch) == importBatch-1 {
				return // the next entry would go to Redis
			}
			_ = im.add(context.Background(), in.n, l)
		}
	})
}
