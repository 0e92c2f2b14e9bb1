package schemas

import (
	"encoding/json"
	"math"
	"reflect"
	"strconv"
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
	var v1, v2 progressValues
	if progressFlat(raw, &v1) {
		var w progressWire
		err := json.Unmarshal(raw, &w)
		v2.fromWire(&w)
		if err != nil || !reflect.DeepEqual(v1.p, v2.p) || v1.has&progressRequired != v2.has&progressRequired {
			t.Fatalf("%q: flat %+v (%b), encoding/json %+v (%b) (%v)", raw, v1.p, v1.has, v2.p, v2.has, err)
		}
	}
}

// TestAppendProgressMatchesJSON: the progress encoder writes the bytes
// encoding/json writes, for every field and the values that need care
// (escapes, HTML characters, other runes, invalid UTF-8, floats in
// exponent form), and refuses what encoding/json refuses.
func TestAppendProgressMatchesJSON(t *testing.T) {
	for _, in := range progressSamples {
		var v FileUploadProgressPayload
		if json.Unmarshal([]byte(in), &v) == nil {
			checkAppendProgress(t, &v)
		}
	}
	for _, s := range []string{"", "plain", `a"b`, `a\b`, "<b>&", "é ü 😀", "\xff", "a\tb\x01", "\u2028\u2029"} {
		checkAppendProgress(t, &FileUploadProgressPayload{FileID: s, UploadID: s, FileName: s, RoomID: s, UserID: s, UserName: s})
	}
	for _, f := range []float64{0, -0.0, 1, 12.5, 1e-6, 9.99e-7, 1e20, 1e21, 123456789e15, -1e-9, 3.14159265358979, math.MaxFloat64, math.SmallestNonzeroFloat64} {
		seq, at := int64(-7), int64(1767225600000000)
		checkAppendProgress(t, &FileUploadProgressPayload{Percentage: f, UploadSpeed: &f, EstimatedTimeRemaining: &f, Seq: &seq, SentAt: &at, BytesUploaded: math.MaxInt64, TotalBytes: math.MinInt64})
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, ok := appendProgress(nil, &FileUploadProgressPayload{Percentage: f}); ok {
			t.Errorf("percentage %v encoded; encoding/json refuses it", f)
		}
	}
}

func FuzzAppendProgress(f *testing.F) {
	f.Add("f-12", "holiday.mov", "alice", int64(5242880), 5.0, 1.5e-7, true, int64(17))
	f.Add("a\"<b>", "\xff\u2028", "", int64(-1), 1e21, 0.0, false, int64(0))
	f.Fuzz(func(t *testing.T, id, name, user string, n int64, pct, speed float64, opt bool, seq int64) {
		v := &FileUploadProgressPayload{FileID: id, UploadID: id, FileName: name, RoomID: id, UserID: user,
			BytesUploaded: n, TotalBytes: -n, Percentage: pct, UserName: user}
		if opt {
			v.UploadSpeed, v.EstimatedTimeRemaining, v.Seq, v.SentAt = &speed, &pct, &seq, &n
		}
		checkAppendProgress(t, v)
	})
}

func checkAppendProgress(t *testing.T, v *FileUploadProgressPayload) {
	t.Helper()
	want, wantErr := json.Marshal(v)
	got, ok := appendProgress(nil, v)
	if ok != (wantErr == nil) {
		t.Fatalf("%+v: encoded %v, encoding/json's error %v", v, ok, wantErr)
	}
	if ok && string(got) != string(want) {
		t.Fatalf("%+v:\n got %s\nwant %s", v, got, want)
	}
}

// TestShortFloat: the progress reader's own float reading gives what
// strconv.ParseFloat gives, sign of zero included, and leaves the rest
// to it.
func TestShortFloat(t *testing.T) {
	for _, s := range []string{"0", "-0", "5", "12.5", "-0.25", "0.1", "0.000001", "99.99", "123456789012345",
		"1234567890.12345", "3.14159265358979", "100.0", "0.30000000000000", "1234567890123456", "1e2", "1.", ".5", "-", "", "1.2.3", "01", "+1"} {
		got, ok := shortFloat([]byte(s))
		want, err := strconv.ParseFloat(s, 64)
		if !ok {
			continue // strconv's to read
		}
		if err != nil || math.Float64bits(got) != math.Float64bits(want) {
			t.Errorf("%q: %v, strconv %v (%v)", s, got, want, err)
		}
	}
}

func FuzzShortFloat(f *testing.F) {
	f.Add("12.5")
	f.Add("-0.000123456789")
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := shortFloat([]byte(s))
		if !ok {
			return
		}
		want, err := strconv.ParseFloat(s, 64)
		if err != nil || math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("%q: %v, strconv %v (%v)", s, got, want, err)
		}
	})
}
