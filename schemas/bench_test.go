package schemas

import "testing"

// BenchmarkParseProgress is the connector's validation of the frequent
// event: required fields, types, limits, userId, and the normalized
// payload that goes into the stream.
func BenchmarkParseProgress(b *testing.B) {
	raw := []byte(`{"fileId":"f-12","uploadId":"u-12","fileName":"holiday.mov","roomId":"room-42","userId":"alice","bytesUploaded":5242880,"totalBytes":104857600,"percentage":5,"seq":17,"sentAt":1767225600000000}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseCommand(EventFileUploadProgress, raw, "alice"); err != nil {
			b.Fatal(err)
		}
	}
}
