package protocol

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzFrame runs whole WebSocket text frames through the packet state
// machine as the connector does (Engine.IO packet, then Socket.IO packet,
// then event arguments): it never panics, and whatever decodes encodes
// back, with the encoders the server answers with, into a frame that
// decodes to the same thing.
func FuzzFrame(f *testing.F) {
	for _, s := range []string{
		"2", "3", "1", "6", "5", "4", "40", `40{"token":"t"}`, `40/admin,{"token":"t"}`, `40/a1,`,
		`42["join-room",{"roomId":"r"}]`, `427["lock-room",{"roomId":"r"}]`, `42/chat,3["x",{"a":[1,2]}]`,
		`42[1,"two"]`, `42["\u00e9v\"ent",null,true,1.5e3]`, `42["connect"]`, `42[]`, `42{}`,
		`43[]`, `4312["ok",{"x":1}]`, `43/a,1[1]`, `451-["x",{"_placeholder":true,"num":0}]`,
		`44{"message":"m"}`, `41`, `41/a,`, "4", "7", "", "42[\"x\"", "4\xff", `42["a",  1 , "b" ]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		et, data, err := DecodeEngine(frame)
		if err != nil {
			return
		}
		if !bytes.Equal(append([]byte{byte(et)}, data...), frame) {
			t.Fatalf("engine packet %q does not give its frame back", frame)
		}
		if et != EngineMessage {
			return
		}
		p, err := Decode(data)
		if err != nil {
			return
		}
		switch p.Type {
		case Event:
			name, args, err := EventArgs(p.Data)
			if err != nil {
				t.Fatalf("EVENT accepted but its args refused: %v", err)
			}
			if p.Namespace != "/" {
				return
			}
			// What the server sends: 42[name,args...] or, with an ack id,
			// 42<id>[...].
			raw := bytesOf(args)
			id := NoID
			if p.HasID {
				id = p.ID
			}
			re := CloseEventBody(AppendEventBody(AppendHeader(nil, Event, id), name, raw...), "")
			q := redecode(t, re, Event)
			if q.HasID != p.HasID || q.ID != p.ID {
				t.Fatalf("ack id %v/%d became %v/%d through %q", p.HasID, p.ID, q.HasID, q.ID, re)
			}
			name2, args2, err := EventArgs(q.Data)
			if err != nil || name2 != name || !sameArgs(args, args2) {
				t.Fatalf("event %q %q became %q %q (%v) through %q", name, args, name2, args2, err, re)
			}
			// With a recovery offset appended, the same event plus one
			// string argument.
			re = EventFrame(name, "1-0", raw...)
			name2, args2, _ = EventArgs(redecode(t, re, Event).Data)
			if name2 != name || len(args2) != len(args)+1 || string(args2[len(args)]) != `"1-0"` {
				t.Fatalf("event with offset %q decoded as %q %q", re, name2, args2)
			}
		case Ack:
			var args []json.RawMessage
			if err := json.Unmarshal(p.Data, &args); err != nil {
				t.Fatalf("ACK accepted with data %q: %v", p.Data, err)
			}
			if p.Namespace != "/" {
				return
			}
			re := AckFrame(p.ID, bytesOf(args)...)
			q := redecode(t, re, Ack)
			var args2 []json.RawMessage
			if err := json.Unmarshal(q.Data, &args2); err != nil || q.ID != p.ID || !sameArgs(args, args2) {
				t.Fatalf("ack %d %q became %d %q through %q", p.ID, args, q.ID, args2, re)
			}
		case Connect:
			if p.Namespace == "/" {
				return
			}
			// The server refuses other namespaces, naming the namespace.
			re := ConnectErrorFrame(p.Namespace, "Invalid namespace", nil)
			if q := redecode(t, re, ConnectError); q.Namespace != p.Namespace {
				t.Fatalf("namespace %q came back as %q through %q", p.Namespace, q.Namespace, re)
			}
		}
	})
}

// redecode decodes a frame the server encoded; it must be a message packet
// of type want.
func redecode(t *testing.T, frame []byte, want PacketType) Packet {
	t.Helper()
	et, data, err := DecodeEngine(frame)
	if err != nil || et != EngineMessage {
		t.Fatalf("encoded frame %q: engine type %q, %v", frame, et, err)
	}
	p, err := Decode(data)
	if err != nil || p.Type != want {
		t.Fatalf("encoded frame %q: %+v, %v", frame, p, err)
	}
	return p
}

func bytesOf(args []json.RawMessage) [][]byte {
	out := make([][]byte, len(args))
	for i, a := range args {
		out[i] = a
	}
	return out
}

func sameArgs(a, b []json.RawMessage) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
