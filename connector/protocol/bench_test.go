package protocol

import (
	"testing"
)

// A file-upload-progress event as a client sends it (the hot inbound
// packet) and its relayed payload.
var (
	progressIn  = []byte(`2["file-upload-progress",{"fileId":"f-12","uploadId":"u-12","fileName":"holiday.mov","roomId":"room-42","bytesUploaded":5242880,"totalBytes":104857600,"percentage":5,"seq":17,"sentAt":1767225600000000}]`)
	progressOut = []byte(`{"fileId":"f-12","uploadId":"u-12","fileName":"holiday.mov","roomId":"room-42","userId":"alice","bytesUploaded":5242880,"totalBytes":104857600,"percentage":5,"userName":"Alice","seq":17,"sentAt":1767225600000000}`)
)

func BenchmarkDecodeEvent(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(progressIn)))
	for b.Loop() {
		p, err := Decode(progressIn)
		if err != nil || p.Type != Event {
			b.Fatal(err)
		}
	}
}

func BenchmarkEventArgs(b *testing.B) {
	p, err := Decode(progressIn)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := EventArgs(p.Data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeEngine(b *testing.B) {
	frame := append([]byte("4"), progressIn...)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := DecodeEngine(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEventFrame(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(progressOut)))
	for b.Loop() {
		_ = EventFrame("file-upload-progress", "1767225600000-3", progressOut)
	}
}

func BenchmarkAckFrame(b *testing.B) {
	body := []byte(`{"ok":true,"uploadId":"u-12"}`)
	b.ReportAllocs()
	for b.Loop() {
		_ = AckFrame(12, body)
	}
}
