package schemas

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseCommandAccepts(t *testing.T) {
	cmd, err := ParseCommand(EventFileUploadProgress, []byte(`{"fileId":"f1","uploadId":"u1","fileName":"plan.pdf","roomId":"r1",
		"userId":"alice","bytesUploaded":5,"totalBytes":10,"percentage":50,"uploadSpeed":1.5,"extra":"ignored"}`), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if cmd.RoomID != "r1" {
		t.Errorf("room %q", cmd.RoomID)
	}
	var back map[string]any
	_ = json.Unmarshal(cmd.Data, &back)
	want := map[string]any{"fileId": "f1", "uploadId": "u1", "fileName": "plan.pdf", "roomId": "r1", "userId": "alice",
		"bytesUploaded": 5.0, "totalBytes": 10.0, "percentage": 50.0, "uploadSpeed": 1.5}
	if diff := cmp.Diff(want, back); diff != "" {
		t.Errorf("normalized payload (-want,+got):\n%s", diff)
	}
	// userId is filled in from the token when absent.
	cmd, err = ParseCommand(EventJoinRoom, []byte(`{"roomId":"r1"}`), "bob")
	if err != nil || cmd.Payload.(*JoinRoomPayload).UserID != "bob" {
		t.Errorf("join without userId: %+v %v", cmd, err)
	}
	// uploadId defaults to fileId.
	cmd, err = ParseCommand(EventFileUploadStarted, []byte(`{"fileId":"f9","fileName":"a","roomId":"r","size":0}`), "bob")
	if err != nil || cmd.Payload.(*FileUploadStartedPayload).UploadID != "f9" {
		t.Errorf("started without uploadId: %+v %v", cmd, err)
	}
}

func TestParseCommandRejects(t *testing.T) {
	long := strings.Repeat("x", 200)
	tests := []struct {
		event, payload string
		code           Code
		field          string
	}{
		{EventJoinRoom, `{"roomId":"r","userId":"mallory"}`, CodeForbidden, "userId"},
		{EventJoinRoom, `{}`, CodeInvalidPayload, "roomId"},
		{EventJoinRoom, `{"roomId":null}`, CodeInvalidPayload, "roomId"},
		{EventJoinRoom, `{"roomId":42}`, CodeInvalidPayload, "roomId"},
		{EventJoinRoom, `{"roomId":"has space"}`, CodeInvalidPayload, "roomId"},
		{EventJoinRoom, `{"roomId":"a{b}"}`, CodeInvalidPayload, "roomId"},
		{EventJoinRoom, `{"roomId":"` + long + `"}`, CodeInvalidPayload, "roomId"},
		{EventJoinRoom, `"r1"`, CodeInvalidPayload, ""},
		{EventJoinRoom, `[1]`, CodeInvalidPayload, ""},
		{EventJoinRoom, `{"roomId":"r"`, CodeInvalidPayload, ""},
		{EventLockRoom, `{"roomId":"r","reason":"` + strings.Repeat("y", 600) + `"}`, CodeInvalidPayload, "reason"},
		{EventLockRoom, `{"roomId":"r","reason":"a\u0007b"}`, CodeInvalidPayload, "reason"},
		{EventFileUploadStarted, `{"fileId":"f","fileName":"a","roomId":"r"}`, CodeInvalidPayload, "size"},
		{EventFileUploadStarted, `{"fileId":"f","fileName":"a","roomId":"r","size":-1}`, CodeInvalidPayload, "size"},
		{EventFileUploadStarted, `{"fileId":"f","fileName":"a","roomId":"r","size":1.5}`, CodeInvalidPayload, "size"},
		{EventFileUploadStarted, `{"fileId":"f","fileName":"a","roomId":"r","size":"12"}`, CodeInvalidPayload, "size"},
		{EventFileUploadStarted, `{"fileId":"f","fileName":"","roomId":"r","size":1}`, CodeInvalidPayload, "fileName"},
		{EventFileUploadProgress, `{"fileId":"f","uploadId":"u","fileName":"a","roomId":"r","bytesUploaded":11,"totalBytes":10,"percentage":50}`, CodeInvalidPayload, "bytesUploaded"},
		{EventFileUploadProgress, `{"fileId":"f","uploadId":"u","fileName":"a","roomId":"r","bytesUploaded":1,"totalBytes":10,"percentage":101}`, CodeInvalidPayload, "percentage"},
		{EventFileUploadProgress, `{"fileId":"f","uploadId":"u","fileName":"a","roomId":"r","bytesUploaded":1,"totalBytes":10,"percentage":-1}`, CodeInvalidPayload, "percentage"},
		{EventFileUploadProgress, `{"fileId":"f","uploadId":"u","fileName":"a","roomId":"r","bytesUploaded":1,"totalBytes":10}`, CodeInvalidPayload, "percentage"},
		{EventFileUploadProgress, `{"fileId":"f","uploadId":"u","fileName":"a","roomId":"r","bytesUploaded":1,"totalBytes":10,"percentage":10,"uploadSpeed":-3}`, CodeInvalidPayload, "uploadSpeed"},
		{EventFileUploadCompleted, `{"fileId":"f","fileName":"a","roomId":"r","size":1,"mimeType":"text/\u00e9"}`, CodeInvalidPayload, "mimeType"},
		{"drop-tables", `{}`, CodeUnknownEvent, ""},
	}
	for _, tt := range tests {
		_, err := ParseCommand(tt.event, []byte(tt.payload), "alice")
		if err == nil {
			t.Errorf("%s %s: accepted", tt.event, tt.payload)
			continue
		}
		if err.Code != tt.code || err.Field != tt.field || err.Message == "" {
			t.Errorf("%s %s: %+v, want %s on %q", tt.event, tt.payload, err, tt.code, tt.field)
		}
	}
}

func TestCodesAreCatalogued(t *testing.T) {
	for _, c := range []Code{CodeInvalidToken, CodeExpiredToken, CodeUnauthorized, CodeForbidden, CodeInvalidPayload,
		CodeRoomLocked, CodeNotMember, CodeUnavailable, CodeRoomFull, CodeTooManyNewRooms, CodeTooManyUploads, CodeTooManyFiles, CodeUploadNotStarted, CodeNotOwner} {
		if !c.Known() || NewError(c, "").Message == "" {
			t.Errorf("code %s has no default message", c)
		}
	}
	if !NewError(CodeUnavailable, "").Temporary || NewError(CodeForbidden, "").Temporary {
		t.Error("only unavailable and rate_limited are temporary")
	}
}

// FuzzParseCommand: validation never panics, and whatever it accepts is a
// payload of valid ids that encodes back to JSON carrying the caller as
// its user.
func FuzzParseCommand(f *testing.F) {
	f.Add(EventJoinRoom, `{"roomId":"r1"}`)
	f.Add(EventFileUploadProgress, `{"fileId":"f","uploadId":"u","fileName":"a","roomId":"r","bytesUploaded":1,"totalBytes":2,"percentage":50}`)
	f.Add(EventLockRoom, `{"roomId":"r","reason":"x"}`)
	f.Add(EventFileUploadCompleted, `{"fileId":"f","fileName":"a","roomId":"r","size":3,"isFolder":true}`)
	f.Fuzz(func(t *testing.T, event, payload string) {
		cmd, err := ParseCommand(event, []byte(payload), "alice")
		if err != nil {
			if !err.Code.Known() {
				t.Fatalf("unknown code %q", err.Code)
			}
			return
		}
		if !ValidID(cmd.RoomID) || !json.Valid(cmd.Data) {
			t.Fatalf("accepted bad command %+v", cmd)
		}
		var v struct {
			UserID string `json:"userId"`
		}
		if json.Unmarshal(cmd.Data, &v) != nil || v.UserID != "alice" {
			t.Fatalf("accepted payload not owned by the caller: %s", cmd.Data)
		}
	})
}

// FuzzProgressFastPath: the one-decode path for file-upload-progress
// never accepts what the general path refuses, and gives the same
// normalized payload; it may leave a payload to the general path.
func FuzzProgressFastPath(f *testing.F) {
	for _, s := range []string{
		`{"fileId":"f","uploadId":"u","fileName":"a.pdf","roomId":"r","bytesUploaded":1,"totalBytes":2,"percentage":50}`,
		`{"fileId":"f","uploadId":"u","fileName":"a.pdf","roomId":"r","userId":"alice","bytesUploaded":0,"totalBytes":0,"percentage":0,"uploadSpeed":1.5,"estimatedTimeRemaining":2,"seq":3,"sentAt":4,"userName":"x","extra":[1]}`,
		`{"fileId":"f","uploadId":"u","fileName":"a.pdf","roomId":"r","userId":"bob","bytesUploaded":1,"totalBytes":2,"percentage":50}`,
		`{"fileId":"f","uploadId":"u","fileName":"a.pdf","roomId":"r","bytesUploaded":3,"totalBytes":2,"percentage":50}`,
		`{"fileId":"f","uploadId":"u","fileName":"a.pdf","roomId":"r","bytesUploaded":null,"totalBytes":2,"percentage":50}`,
		`{"fileId":"f","uploadId":"u","fileName":"a.pdf","roomId":"r","totalBytes":2,"percentage":50}`,
		`{"fileId":"f","uploadId":"u","fileName":"","roomId":"r","bytesUploaded":1,"totalBytes":2,"percentage":101}`,
		`{"fileId":"f","uploadId":"u","fileName":"a","roomId":"r","bytesUploaded":"1","totalBytes":2,"percentage":5}`,
		`[1]`, `{`, ``, `null`, ` {"roomId":"r"} `,
		`{"fileId":"uploadId","uploAdId":"0","fileName":"a","roomId":"r","bytesUploaded":1,"totalBytes":2,"percentage":5}`,
		`{"fileId":"f","uploadId":"u","fileName":"a","roomId":"r","bytesUploaded":null,"BytesUploaded":1,"totalBytes":2,"percentage":5}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		fast := parseProgress(raw, "alice")
		slow, err := parseCommand(EventFileUploadProgress, raw, "alice")
		switch {
		case fast != nil && err != nil:
			t.Fatalf("fast path accepted what the general path refuses (%v): %s", err, raw)
		case fast != nil && (string(fast.Data) != string(slow.Data) || fast.RoomID != slow.RoomID):
			t.Fatalf("normalized differently:\n fast %s\n slow %s", fast.Data, slow.Data)
		}
	})
}

// The fast path takes what clients normally send.
func TestProgressFastPathTakesPlainPayloads(t *testing.T) {
	raw := []byte(`{"fileId":"f-12","uploadId":"u-12","fileName":"holiday.mov","roomId":"room-42","userId":"alice","bytesUploaded":5242880,"totalBytes":104857600,"percentage":5,"uploadSpeed":1.5,"seq":17,"sentAt":1767225600000000}`)
	if parseProgress(raw, "alice") == nil {
		t.Fatal("a plain progress payload went the slow way")
	}
}

// TestNamesRefuseSpoofingCharacters: bidi controls and other invisible
// format characters would let a file name (or a user name, or a reason)
// look like another in a UI; they are refused with invalid_payload on the
// field, on every path that takes a file name (the progress fast path
// included). Text in any script, with the joiners it needs, passes.
func TestNamesRefuseSpoofingCharacters(t *testing.T) {
	refused := map[string]string{
		"right-to-left override": "invoice\u202Etxt.exe",
		"left-to-right override": "\u202Dabc",
		"pop directional":        "a\u202Cb",
		"first strong isolate":   "a\u2068b\u2069",
		"left-to-right isolate":  "\u2066abc",
		"right-to-left mark":     "abc\u200F",
		"arabic letter mark":     "a\u061Cb",
		"zero-width space":       "pay\u200Bpal.pdf",
		"word joiner":            "a\u2060b",
		"byte order mark":        "\uFEFFreport.pdf",
		"soft hyphen":            "re\u00ADport.pdf",
		"tag characters":         "a\U000E0041\U000E0042b",
		"line separator":         "a\u2028b",
		"paragraph separator":    "a\u2029b",
		"joiner at the start":    "\u200Dabc",
		"joiner at the end":      "abc\u200C",
		"joiner next to a space": "ab \u200Dcd",
		"two joiners":            "a\u200D\u200Db",
		"c1 control":             "a\u0085b",
	}
	accepted := []string{
		"plan.pdf", "Übersicht – März.xlsx", "報告書.docx", "שלום.txt", "تقرير.pdf",
		"می\u200Cخواهم.txt",              // Persian: ZWNJ between two letters
		"\U0001F468\u200D\U0001F4BB.png", // emoji ZWJ sequence
		"क्\u200Dष", "thumbs \U0001F44D\U0001F3FD", "e\u0301te",
	}
	for what, name := range refused {
		if ValidText(name, MaxNameLen) {
			t.Errorf("%s: ValidText accepts %+q", what, name)
		}
		for _, tc := range []struct{ event, payload, field string }{
			{EventFileUploadStarted, `{"fileId":"f","roomId":"r","size":1,"fileName":%s}`, "fileName"},
			{EventFileUploadProgress, `{"fileId":"f","uploadId":"u","roomId":"r","bytesUploaded":1,"totalBytes":2,"percentage":50,"fileName":%s}`, "fileName"},
			{EventFileUploadCompleted, `{"fileId":"f","roomId":"r","size":1,"fileName":%s}`, "fileName"},
			{EventLockRoom, `{"roomId":"r","reason":%s}`, "reason"},
			{EventFileUploadFailed, `{"fileId":"f","roomId":"r","reason":%s}`, "reason"},
		} {
			q, _ := json.Marshal(name)
			_, err := ParseCommand(tc.event, []byte(strings.Replace(tc.payload, "%s", string(q), 1)), "alice")
			if err == nil || err.Code != CodeInvalidPayload || err.Field != tc.field {
				t.Errorf("%s in %s %s: %+v, want invalid_payload on %s", what, tc.event, tc.field, err, tc.field)
			}
		}
	}
	for _, name := range accepted {
		if !ValidText(name, MaxNameLen) {
			t.Errorf("ValidText refuses %+q", name)
		}
		q, _ := json.Marshal(name)
		raw := []byte(`{"fileId":"f","uploadId":"u","roomId":"r","bytesUploaded":1,"totalBytes":2,"percentage":50,"fileName":` + string(q) + `}`)
		if cmd, err := ParseCommand(EventFileUploadProgress, raw, "alice"); err != nil || cmd.Payload.(*FileUploadProgressPayload).FileName != name {
			t.Errorf("progress with file name %+q: %v", name, err)
		}
	}
}
