package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		in   string
		want Packet
	}{
		{"0", Packet{Type: Connect, Namespace: "/"}},
		{`0{"token":"abc"}`, Packet{Type: Connect, Namespace: "/", Data: json.RawMessage(`{"token":"abc"}`)}},
		{`0/admin,{"token":"abc"}`, Packet{Type: Connect, Namespace: "/admin", Data: json.RawMessage(`{"token":"abc"}`)}},
		{"1", Packet{Type: Disconnect, Namespace: "/"}},
		{"1/admin,", Packet{Type: Disconnect, Namespace: "/admin"}},
		{`2["join-room",{"roomId":"r1"}]`, Packet{Type: Event, Namespace: "/", Data: json.RawMessage(`["join-room",{"roomId":"r1"}]`),
			Name: "join-room", Args: []json.RawMessage{json.RawMessage(`{"roomId":"r1"}`)}}},
		{`212["x"]`, Packet{Type: Event, Namespace: "/", HasID: true, ID: 12, Data: json.RawMessage(`["x"]`), Name: "x", Args: []json.RawMessage{}}},
		{`3/chat,7[{"ok":true}]`, Packet{Type: Ack, Namespace: "/chat", HasID: true, ID: 7, Data: json.RawMessage(`[{"ok":true}]`)}},
		{`51-["up",{"_placeholder":true,"num":0}]`, Packet{Type: BinaryEvent, Namespace: "/", Attachments: 1, Data: json.RawMessage(`["up",{"_placeholder":true,"num":0}]`),
			Name: "up", Args: []json.RawMessage{json.RawMessage(`{"_placeholder":true,"num":0}`)}}},
		{`4{"message":"nope"}`, Packet{Type: ConnectError, Namespace: "/", Data: json.RawMessage(`{"message":"nope"}`)}},
	}
	for _, tt := range tests {
		got, err := Decode([]byte(tt.in))
		if err != nil {
			t.Errorf("Decode(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Decode(%q) (-want,+got):\n%s", tt.in, diff)
		}
	}
}

// TestSplitArray checks the scanning split of EVENT arguments against
// encoding/json on arrays whose strings hold the characters the scanner
// must skip.
func TestSplitArray(t *testing.T) {
	for _, in := range []string{
		`[]`, `[ ]`, `["a"]`, ` [ "a" , 1 ,true, null ] `, `["a",{"b":[1,2,{"c":"]"}]},"d"]`,
		`["q\"],[",{"k":"\\"}, "x"]`, "[\"a\",\n\t{\"b\" : \"}\"}\r\n]", `[[],{},[[]],""]`, `["\u005d",-1.5e3]`,
	} {
		var want []json.RawMessage
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		got := splitArray(bytes.TrimSpace([]byte(in)))
		if len(got) != len(want) {
			t.Errorf("%s: %d elements, want %d (%q)", in, len(got), len(want), got)
			continue
		}
		for i := range want {
			if !bytes.Equal(got[i], bytes.TrimSpace(want[i])) {
				t.Errorf("%s: element %d is %s, want %s", in, i, got[i], want[i])
			}
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	bad := []string{
		"",
		"7",
		"x",
		`2`,                        // event without data
		`2{"a":1}`,                 // event data not an array
		`2[]`,                      // empty array
		`2[{"a":1}]`,               // name not a string
		`2["connect"]`,             // reserved name
		`2["disconnect",1]`,        // reserved name
		`2["x",`,                   // truncated JSON
		`3["x"]`,                   // ack without id
		`31{"a":1}`,                // ack data not an array
		`0[1]`,                     // connect data not an object
		`01{}`,                     // connect with ack id
		`1{"a":1}`,                 // disconnect with data
		`5-["x"]`,                  // binary without count
		`511-["x"]`,                // too many attachments
		`2123456789012345678["x"]`, // ack id too long
	}
	for _, in := range bad {
		if p, err := Decode([]byte(in)); err == nil {
			t.Errorf("Decode(%q) = %+v, want an error", in, p)
		} else if !errors.Is(err, ErrParse) {
			t.Errorf("Decode(%q) error %v does not wrap ErrParse", in, err)
		}
	}
}

func TestEventArgs(t *testing.T) {
	name, args, err := EventArgs(json.RawMessage(`["join-room",{"roomId":"r"},"x"]`))
	if err != nil {
		t.Fatal(err)
	}
	if name != "join-room" || len(args) != 2 || string(args[0]) != `{"roomId":"r"}` {
		t.Fatalf("got %q %q", name, args)
	}
}

func TestFrames(t *testing.T) {
	tests := []struct{ got, want string }{
		{string(EventFrame("user-joined", "", []byte(`{"a":1}`))), `42["user-joined",{"a":1}]`},
		{string(EventFrame("user-joined", "c1/5-0", []byte(`{"a":1}`))), `42["user-joined",{"a":1},"c1/5-0"]`},
		{string(EventFrame(`we"ird`, "")), `42["we\"ird"]`},
		{string(AckFrame(3, []byte(`{"ok":true}`))), `433[{"ok":true}]`},
		{string(ConnectFrame("s1", "")), `40{"sid":"s1"}`},
		{string(ConnectFrame("s1", "p1")), `40{"sid":"s1","pid":"p1"}`},
		{string(ConnectErrorFrame("/", "bad token", map[string]string{"code": "invalid_token"})), `44{"message":"bad token","data":{"code":"invalid_token"}}`},
		{string(ConnectErrorFrame("/x", "Invalid namespace", nil)), `44/x,{"message":"Invalid namespace"}`},
		{string(OpenPacket(Handshake{SID: "e1", PingInterval: 25000, PingTimeout: 20000, MaxPayload: 1000000})), `0{"sid":"e1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %s, want %s", tt.got, tt.want)
		}
	}
}

// TestRoundTrip checks that every frame the server writes decodes back to
// the same packet, so the client's parser and ours agree.
func TestRoundTrip(t *testing.T) {
	frame := EventFrame("file-upload-progress", "off", []byte(`{"percentage":50}`))
	et, data, err := DecodeEngine(frame)
	if err != nil || et != EngineMessage {
		t.Fatalf("DecodeEngine: %v %v", et, err)
	}
	p, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	name, args, err := EventArgs(p.Data)
	if err != nil || name != "file-upload-progress" || len(args) != 2 {
		t.Fatalf("EventArgs: %q %q %v", name, args, err)
	}
}

func TestDecodeEngine(t *testing.T) {
	for _, in := range []string{"", "9", "a"} {
		if _, _, err := DecodeEngine([]byte(in)); err == nil {
			t.Errorf("DecodeEngine(%q) accepted", in)
		}
	}
	typ, data, err := DecodeEngine([]byte("3"))
	if err != nil || typ != EnginePong || len(data) != 0 {
		t.Errorf("pong: %v %q %v", typ, data, err)
	}
}

// FuzzDecode feeds arbitrary frames to the decoders: they must never panic,
// and whatever they accept must be internally consistent.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{"0", `0{"token":"t"}`, `2["join-room",{"roomId":"r"}]`, `21["x",1]`, `3/a,1[]`, `51-["x",{"_placeholder":true,"num":0}]`, `4{"message":"m"}`, "1", `2[1,2]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Decode(b)
		if err != nil {
			return
		}
		if p.Type > BinaryAck {
			t.Fatalf("type %d accepted", p.Type)
		}
		if p.Attachments > MaxAttachments || p.ID < 0 {
			t.Fatalf("bad packet accepted: %+v", p)
		}
		if p.Data != nil && !json.Valid(p.Data) {
			t.Fatalf("invalid JSON accepted: %q", p.Data)
		}
		if p.Type == Event {
			if _, _, err := EventArgs(p.Data); err != nil {
				t.Fatalf("EVENT accepted but args rejected: %v", err)
			}
		}
		_, _, _ = DecodeEngine(b)
	})
}
