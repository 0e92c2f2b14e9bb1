package streams

import (
	"testing"
	"time"
)

// benchEnvelope is a file-upload-progress event as a connector appends it.
func benchEnvelope() *Envelope {
	return &Envelope{Type: "file-upload-progress", RoomID: "room-42", UserID: "alice", UserName: "Alice",
		SessionID: "s9f8e7d6c5b4a39281706f5e4d3c2b1a", SocketID: "Zm9vYmFyYmF6cXV4cXV1", ConnectorID: "c-1a2b3c4d5e6f",
		Data: []byte(`{"fileId":"f-12","uploadId":"u-12","fileName":"holiday.mov","roomId":"room-42","userId":"alice","bytesUploaded":5242880,"totalBytes":104857600,"percentage":5,"seq":17,"sentAt":1767225600000000}`),
		At:   time.UnixMilli(1767225600000)}
}

// asRead turns XADD values into the map go-redis returns on XREAD.
func asRead(values []any) map[string]any {
	m := make(map[string]any, len(values)/2)
	for i := 0; i+1 < len(values); i += 2 {
		v := values[i+1]
		if b, ok := v.([]byte); ok {
			v = string(b) // Redis returns strings
		}
		m[values[i].(string)] = v
	}
	return m
}

func BenchmarkEnvelopeValues(b *testing.B) {
	e := benchEnvelope()
	b.ReportAllocs()
	for b.Loop() {
		_ = e.Values()
	}
}

func BenchmarkDecodeEnvelope(b *testing.B) {
	m := asRead(benchEnvelope().Values())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeEnvelope("1767225600000-0", m); err != nil {
			b.Fatal(err)
		}
	}
}

// benchOutbound is what one progress event produces for a connector
// hosting all ten members of the room: one message naming the room.
func benchOutbound() *Outbound {
	return &Outbound{Partition: 7, Source: "1767225600000-0", Room: "room-42", Messages: []Message{{
		Event: "file-upload-progress", Room: "room-42",
		Body: []byte(`{"fileId":"f-12","uploadId":"u-12","fileName":"holiday.mov","roomId":"room-42","userId":"alice","bytesUploaded":5242880,"totalBytes":104857600,"percentage":5,"userName":"Alice","seq":17,"sentAt":1767225600000000}`),
	}}}
}

func BenchmarkOutboundValues(b *testing.B) {
	o := benchOutbound()
	b.ReportAllocs()
	for b.Loop() {
		_ = o.Values()
	}
}

func BenchmarkDecodeOutbound(b *testing.B) {
	m := asRead(benchOutbound().Values())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeOutbound("1767225600001-0", m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPartition(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = Partition("room-42", 16)
	}
}
