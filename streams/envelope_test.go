package streams

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	for _, e := range []*Envelope{
		{Type: "file-upload-progress", RoomID: "r1", UserID: "u1", UserName: "Ann", SessionID: "ss", SocketID: "sk",
			ConnectorID: "c1", AckID: 7, HasAck: true, Origin: "o1", Seq: 42, Data: []byte(`{"roomId":"r1"}`), At: at},
		{Type: "socket-move", RoomID: "r1", SocketID: "sk", ConnectorID: "c1", Target: "c2", At: at},
	} {
		got, err := DecodeEnvelope("1-0", asRead(e.Values()))
		if err != nil {
			t.Fatalf("%s: %v", e.Type, err)
		}
		e.ID, e.Version, e.Accepted = "1-0", FormatCurrent, at
		if diff := cmp.Diff(e, got); diff != "" {
			t.Errorf("%s round trip (-sent,+read):\n%s", e.Type, diff)
		}
	}
}

func TestEnvelopeBadSeq(t *testing.T) {
	base := func() map[string]any {
		return asRead((&Envelope{Type: "join-room", RoomID: "r1", SocketID: "sk", Origin: "o1", Seq: 1}).Values())
	}
	for name, edit := range map[string]func(map[string]any){
		"seq not a number":    func(m map[string]any) { m["seq"] = "x" },
		"seq zero":            func(m map[string]any) { m["seq"] = "0" },
		"no origin":           func(m map[string]any) { delete(m, "origin") },
		"origin with a brace": func(m map[string]any) { m["origin"] = "o{1}" },
		"no socket":           func(m map[string]any) { delete(m, "socket") },
	} {
		m := base()
		edit(m)
		if _, err := DecodeEnvelope("1-0", m); !errors.Is(err, ErrBadEnvelope) {
			t.Errorf("%s: %v, want ErrBadEnvelope", name, err)
		}
	}
}
