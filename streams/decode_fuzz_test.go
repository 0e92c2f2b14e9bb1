package streams

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/roomstream/roomstream/schemas"
)

// fuzzFields turns "k=v\x00k=v..." into stream entry fields as Redis
// returns them (string values). A part without '=' is a key with an empty
// value.
func fuzzFields(s string) map[string]any {
	m := map[string]any{}
	for _, part := range strings.Split(s, "\x00") {
		k, v, _ := strings.Cut(part, "=")
		m[k] = v
	}
	return m
}

// fieldsSeed is the fuzz form of values (as written by Values).
func fieldsSeed(values []any) string {
	var parts []string
	for k, v := range asRead(values) {
		parts = append(parts, k+"="+v.(string))
	}
	slices.Sort(parts)
	return strings.Join(parts, "\x00")
}

// FuzzDecodeEnvelope: DecodeEnvelope never panics on what an inbound
// stream may hold, what it accepts is an envelope workers can apply, and
// it survives a round trip through Values.
func FuzzDecodeEnvelope(f *testing.F) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	for _, e := range []*Envelope{
		{Type: "file-upload-progress", RoomID: "r1", UserID: "u1", UserName: "Ann", SessionID: "ss", SocketID: "sk",
			ConnectorID: "c1", AckID: 7, HasAck: true, Origin: "o1", Seq: 42, Data: []byte(`{"roomId":"r1"}`), At: at},
		{Type: "socket-move", RoomID: "r1", SocketID: "sk", ConnectorID: "c1", Target: "c2", At: at},
		{Type: "user-left", RoomID: "r{1}", UserID: "u", Reason: "connector_lost", At: at},
	} {
		f.Add("1-0", fieldsSeed(e.Values()))
	}
	for _, s := range []string{
		"", "v=1", "v=1\x00type=join-room\x00room=r\x00at=1",
		"v=2\x00type=join-room\x00room=r\x00at=1",
		"v=3\x00type=join-room\x00room=r\x00at=1",
		"v=1\x00type=join-room\x00room=r\x00at=1\x00t=1999",
		"v=1\x00type=join-room\x00room=r\x00at=1\x00t=2000",
		"v=1\x00type=join-room\x00room=r\x00at=9223372036854775",
		"v=1\x00type=join-room\x00room=r\x00at=9223372036854776",
		"v=1\x00type=join-room\x00room=r\x00at=1\x00seq=1\x00origin=o",
		"v=1\x00type=join-room\x00room=r\x00at=1\x00seq=1\x00origin=o\x00socket=s",
		"v=1\x00type=join-room\x00room=r\x00at=1\x00seq=0\x00origin=o\x00socket=s",
		"v=1\x00type=join-room\x00room=r\x00at=1\x00ack=-5",
		"v=1\x00type=join-room\x00room=r\x00at=1\x00ack=99999999999999999999",
		"v=-1\x00type=x\x00room=r\x00at=-62135596800000",
		"v=1\x00type=x\x00room=r\x00at=x",
	} {
		f.Add("1-0", s)
	}
	f.Fuzz(func(t *testing.T, id, fields string) {
		e, err := DecodeEnvelope(id, fuzzFields(fields))
		if err != nil {
			if e != nil {
				t.Fatalf("error %v with an envelope", err)
			}
			return
		}
		if e.ID != id || e.Type == "" || e.RoomID == "" || e.Version > FormatCurrent || e.Version < FormatPrevious {
			t.Fatalf("accepted %+v", e)
		}
		if e.Seq > 0 && (!schemas.ValidID(e.Origin) || e.SocketID == "") {
			t.Fatalf("numbered event without a valid origin or socket: %+v", e)
		}
		if e.At.IsZero() {
			return // Values writes the current time for a zero time
		}
		again, err := DecodeEnvelope(id, asRead(e.Values()))
		if err != nil {
			t.Fatalf("re-encoded envelope refused: %v", err)
		}
		e.Version = FormatCurrent // Values writes this build's format
		if diff := cmp.Diff(e, again); diff != "" {
			t.Fatalf("round trip (-decoded,+again):\n%s", diff)
		}
	})
}

// FuzzDecodeOutbound: DecodeOutbound never panics on what an outbound
// stream may hold, every message it accepts has a recipient, and it
// survives a round trip through Values.
func FuzzDecodeOutbound(f *testing.F) {
	for _, o := range []*Outbound{
		{Partition: 3, Source: "5-1", Room: "r1", Messages: []Message{
			{Event: "user-joined", Body: []byte(`{"roomId":"r1"}`), Room: "r1"},
			{AckID: 4, Body: []byte(`{"ok":true}`), To: []string{"s1"}},
			{Event: JoinEvent, Room: "r1", To: []string{"s2"}},
		}},
		{Partition: 0, Messages: []Message{{Event: MovedEvent, Body: []byte(`{"roomId":"r","status":"moved"}`), To: []string{"a", "b"}}}},
	} {
		f.Add("1-0", fieldsSeed(o.Values()))
	}
	for _, s := range []string{
		"", "p=1", "p=x", "p=1\x00k0=e:x", "p=1\x00k0=e:x\x00r0=r", "p=1\x00k0=a:x\x00t0=s",
		"p=1\x00k0=a:-1\x00t0=s", "p=1\x00k0=z\x00t0=s", "p=1\x00k0=e:\x00t0=,", "p=1\x00k0=e:x\x00t0=a\x00k2=e:y\x00t2=b",
		"p=1\x00k0=e:x\x00t0=a\x00k1=e:y", "p=-1\x00k0=a:+7\x00t0=a,,b",
		"v=2\x00p=1\x00at=1767225600000001\x00k0=e:x\x00t0=a", "v=3\x00p=1\x00k0=e:x\x00t0=a", "v=0\x00p=1", "p=1\x00at=-1",
	} {
		f.Add("1-0", s)
	}
	f.Fuzz(func(t *testing.T, id, fields string) {
		o, err := DecodeOutbound(id, fuzzFields(fields))
		if err != nil {
			if o != nil {
				t.Fatalf("error %v with an entry", err)
			}
			return
		}
		if o.ID != id {
			t.Fatalf("id %q, want %q", o.ID, id)
		}
		for i, m := range o.Messages {
			if m.Room == "" && len(m.To) == 0 {
				t.Fatalf("message %d without a recipient: %+v", i, m)
			}
		}
		if o.Version > FormatCurrent || o.Version < FormatPrevious {
			t.Fatalf("accepted format %d", o.Version)
		}
		again, err := DecodeOutbound(id, asRead(o.Values()))
		if err != nil {
			t.Fatalf("re-encoded entry refused: %v", err)
		}
		o.Version = FormatCurrent // Values writes this build's format
		if diff := cmp.Diff(o, again); diff != "" {
			t.Fatalf("round trip (-decoded,+again):\n%s", diff)
		}
	})
}
