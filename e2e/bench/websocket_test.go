package bench

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

// serverFrame is a frame as a server sends it: unmasked.
func serverFrame(fin bool, op byte, payload []byte) []byte {
	b := []byte{op, 0}
	if fin {
		b[0] |= 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b[1] = byte(n)
	case n <= 0xFFFF:
		b[1] = 126
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b[1] = 127
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

// feedAll feeds stream to a wsConn in pieces cut at the given offsets and
// returns what it handed on, as "op:payload".
func feedAll(t testing.TB, stream []byte, cuts ...int) ([]string, error) {
	t.Helper()
	var w wsConn
	var got []string
	prev := 0
	for _, c := range append(cuts, len(stream)) {
		if c < prev || c > len(stream) {
			continue
		}
		err := w.feed(stream[prev:c], func(op byte, p []byte) { got = append(got, fmt.Sprintf("%d:%s", op, p)) })
		if err != nil {
			return got, err
		}
		prev = c
	}
	return got, nil
}

func TestFeedFrames(t *testing.T) {
	long := strings.Repeat("x", 300)
	huge := strings.Repeat("y", 70_000)
	var stream []byte
	stream = append(stream, serverFrame(true, opText, []byte("0{}"))...)
	stream = append(stream, serverFrame(false, opText, []byte("42[\"a\","))...) // a fragmented message...
	stream = append(stream, serverFrame(true, opPing, []byte("p"))...)          // ...a ping between its fragments...
	stream = append(stream, serverFrame(false, opContinuation, []byte("1"))...)
	stream = append(stream, serverFrame(true, opContinuation, []byte("]"))...) // ...and its end
	stream = append(stream, serverFrame(true, opText, []byte(long))...)
	stream = append(stream, serverFrame(true, opText, []byte(huge))...)
	stream = append(stream, serverFrame(true, opClose, []byte{3, 232})...)
	want := []string{"1:0{}", "9:p", `1:42["a",1]`, "1:" + long, "1:" + huge, "8:\x03\xe8"}
	// Whole, byte by byte around the headers, and in random-sized pieces:
	// the same messages.
	for _, cuts := range [][]int{nil, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {7, 300, 301, 302, 1000, 40_000, 70_100}} {
		got, err := feedAll(t, stream, cuts...)
		if err != nil {
			t.Fatalf("cuts %v: %v", cuts, err)
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("cuts %v: got %d messages %.200q, want %.200q", cuts, len(got), got, want)
		}
	}
	for name, bad := range map[string][]byte{
		"masked by the server": {0x81, 0x81, 1, 2, 3, 4, 'x'},
		"extension bits":       {0xC1, 0x01, 'x'},
		"continuation first":   serverFrame(true, opContinuation, []byte("x")),
		"two messages at once": append(serverFrame(false, opText, []byte("a")), serverFrame(true, opText, []byte("b"))...),
		"too long":             {0x81, 127, 0, 0, 0, 0, 1, 0, 0, 0},
	} {
		if _, err := feedAll(t, bad); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestClientFrame unmasks what the client writes, as a server does.
func TestClientFrame(t *testing.T) {
	for _, n := range []int{0, 5, 125, 126, 333, 65_535, 65_536} {
		payload := bytes.Repeat([]byte("abcdefghijk"), n/11+1)[:n]
		var frames [][]byte
		frames = append(frames, appendClientFrame(nil, opText, payload))
		buf := append(make([]byte, frameRoom), payload...)
		frames = append(frames, frameInPlace(buf))
		for i, f := range frames {
			h := 2
			switch f[1] & 0x7F {
			case 126:
				h = 4
			case 127:
				h = 10
			}
			if f[0] != 0x81 || f[1]&0x80 == 0 {
				t.Fatalf("n=%d frame %d: header % x, want a final masked text frame", n, i, f[:h])
			}
			key, body := f[h:h+4], bytes.Clone(f[h+4:])
			for j := range body {
				body[j] ^= key[j%4]
			}
			if !bytes.Equal(body, payload) {
				t.Errorf("n=%d frame %d: unmasked payload differs", n, i)
			}
		}
	}
}

// FuzzFeed checks that however a stream of frames is cut into reads, the
// same messages come out, and that no input makes the parser panic.
func FuzzFeed(f *testing.F) {
	f.Add(append(serverFrame(true, opText, []byte("hello")), serverFrame(true, opPing, nil)...), 3)
	f.Add(serverFrame(true, opText, bytes.Repeat([]byte("z"), 200)), 130)
	f.Add([]byte{0x81, 126, 0}, 1)
	f.Fuzz(func(t *testing.T, stream []byte, cut int) {
		whole, errWhole := feedAll(t, stream)
		if cut < 0 || cut > len(stream) {
			return
		}
		split, errSplit := feedAll(t, stream, cut)
		if (errWhole == nil) != (errSplit == nil) || strings.Join(whole, "|") != strings.Join(split, "|") {
			t.Errorf("cut at %d: %q (%v), whole: %q (%v)", cut, split, errSplit, whole, errWhole)
		}
	})
}
