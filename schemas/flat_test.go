package schemas

import (
	"encoding/json"
	"reflect"
	"testing"
)

var progressSamples = []string{
	`{"fileId":"f-12","uploadId":"u-12","fileName":"holiday.mov","roomId":"room-42","userId":"alice","bytesUploaded":5242880,"totalBytes":104857600,"percentage":5,"userName":"Alice","seq":17,"sentAt":1767225600000000}`,
	` { "fileId" : "f" , "uploadId":"u","fileName":"é ü 😀","roomId":"r","bytesUploaded":0,"totalBytes":1,"percentage":12.5e0,"uploadSpeed":-0.25,"estimatedTimeRemaining":1E2 } `,
	`{}`, `{"fileId":"a\"b"}`, `{"fileId":"a","fileId":"b"}`, `{"FileId":"x","fileId":"y"}`, `{"fileId":null}`,
	`{"bytesUploaded":5.0}`, `{"bytesUploaded":1e3}`, `{"percentage":1e400}`, `{"seq":99999999999999999999}`,
	`{"fileId":"a",}`, `{"fileId":"a"`, `{"fileId":"a"} x`, `{"fileId":1}`, `{"bytesUploaded":"1"}`,
	`{"percentage":01}`, `{"percentage":-}`, `{"percentage":1.}`, `{"percentage":.5}`, `{"percentage":+1}`,
	"{\"fileName\":\"\xff\"}", "{\"fileName\":\"a\tb\"}", `{"extra":{"n":1}}`, `{"done":true}`, `[]`, ``, `"x"`,
}

// TestDecodeProgressMatchesJSON: the plain-form reader gives what
// encoding/json gives, error or not.
func TestDecodeProgressMatchesJSON(t *testing.T) {
	for _, in := range progressSamples {
		checkDecodeProgress(t, []byte(in))
	}
}

func FuzzDecodeProgress(f *testing.F) {
	for _, in := range progressSamples {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, raw []byte) { checkDecodeProgress(t, raw) })
}

func checkDecodeProgress(t *testing.T, raw []byte) {
	t.Helper()
	var want FileUploadProgressPayload
	wantErr := json.Unmarshal(raw, &want)
	got, err := DecodeProgress(raw)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%q: error %v, encoding/json's %v", raw, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\n got %+v\nwant %+v", raw, got, want)
	}
	// The connector's path: the same verdict as decoding every field.
	var w1, w2 progressWire
	if progressFlat(raw, &w1) {
		if err := json.Unmarshal(raw, &w2); err != nil || !reflect.DeepEqual(w1, w2) {
			t.Fatalf("%q: flat %+v, encoding/json %+v (%v)", raw, w1, w2, err)
		}
	}
}
