package bench

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"syscall"
	"time"
)

// The generator's WebSocket client: just what a simulated user needs
// (RFC 6455 over plain TCP, no extensions), so that once connected its
// socket can be read by a reactor (reactor.go) straight into a shared
// buffer and its frames parsed in place. A general client reads each
// socket from a goroutine of its own, and Go's net then reads twice per
// frame (the frame, then EAGAIN before parking), which at tens of
// thousands of deliveries a second made the generator the bottleneck.

// WebSocket opcodes.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// maxMessage bounds a message from a server (the servers send events of
// a few hundred bytes).
const maxMessage = 4 << 20

// frameRoom is the room left before a payload built for sending: the
// longest header of a client frame (2 + 8 length + 4 mask bytes).
const frameRoom = 14

var (
	errProtocol = errors.New("bench: websocket protocol error")
	errClosed   = errors.New("bench: websocket closed")
)

// wsConn is the client end of one WebSocket. During the handshake and
// the join it is read through nc; then the reactor owns fd, a duplicate
// of the socket's descriptor, and nc is closed.
type wsConn struct {
	nc net.Conn
	fd int // -1 until the reactor owns the socket

	// in holds the bytes read but not parsed yet (the start of a frame);
	// msg puts a fragmented message together (msgOp: its opcode).
	in    []byte
	msg   []byte
	msgOp byte
	// queue holds the messages read during the handshake and not
	// returned yet (copies).
	queue [][]byte
	// closed is set, under the owning conn's wmu, once fd is closed.
	closed bool
}

// dialWebSocket opens a WebSocket to ws://host/path (path with its query).
func dialWebSocket(ctx context.Context, d *net.Dialer, host, path string) (*wsConn, error) {
	nc, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	w := &wsConn{nc: nc, fd: -1}
	stop := w.bound(ctx)
	defer stop()
	var k [16]byte
	binary.LittleEndian.PutUint64(k[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(k[8:], rand.Uint64())
	key := base64.StdEncoding.EncodeToString(k[:])
	req := "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := nc.Write([]byte(req)); err != nil {
		nc.Close()
		return nil, err
	}
	var head []byte
	buf := make([]byte, 4096)
	for {
		n, err := nc.Read(buf)
		head = append(head, buf[:n]...)
		if i := bytes.Index(head, []byte("\r\n\r\n")); i >= 0 {
			w.in = append(w.in, head[i+4:]...)
			head = head[:i]
			break
		}
		if err != nil || len(head) > 16<<10 {
			nc.Close()
			return nil, fmt.Errorf("websocket handshake: %w (got %.80q)", cmpErr(err, errProtocol), head)
		}
	}
	lines := strings.Split(string(head), "\r\n")
	if f := strings.Fields(lines[0]); len(f) < 2 || f[1] != "101" {
		nc.Close()
		return nil, fmt.Errorf("websocket handshake: %.120q", head)
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	want := base64.StdEncoding.EncodeToString(sum[:])
	for _, l := range lines[1:] {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, "Sec-WebSocket-Accept") && strings.TrimSpace(v) == want {
			return w, nil
		}
	}
	nc.Close()
	return nil, fmt.Errorf("websocket handshake: no matching Sec-WebSocket-Accept in %.200q", head)
}

// bound makes ctx's deadline and cancellation end the blocking reads and
// writes on nc until the returned function is called.
func (w *wsConn) bound(ctx context.Context) func() {
	if dl, ok := ctx.Deadline(); ok {
		_ = w.nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = w.nc.SetDeadline(time.Now()) })
	return func() {
		stop()
		_ = w.nc.SetDeadline(time.Time{})
	}
}

// readMessage returns (a copy of) the next text message during the
// handshake and the join, while nc is still read directly (answering
// pings).
func (w *wsConn) readMessage(ctx context.Context) ([]byte, error) {
	stop := w.bound(ctx)
	defer stop()
	buf := make([]byte, 4096)
	for len(w.queue) == 0 {
		var ferr error
		if err := w.feed(nil, func(op byte, p []byte) {
			switch op {
			case opText:
				w.queue = append(w.queue, bytes.Clone(p))
			case opPing:
				_, _ = w.nc.Write(appendClientFrame(nil, opPong, p))
			case opClose:
				ferr = errClosed
			}
		}); err != nil {
			return nil, err
		}
		if ferr != nil {
			return nil, ferr
		}
		if len(w.queue) > 0 {
			break
		}
		n, err := w.nc.Read(buf)
		if n > 0 {
			w.in = append(w.in, buf[:n]...)
		}
		if err != nil && n == 0 {
			return nil, err
		}
	}
	m := w.queue[0]
	w.queue = w.queue[1:]
	return m, nil
}

// detach takes the socket from nc for the reactor: a duplicate of its
// descriptor, non-blocking as Go left it, and nc closed (which takes the
// original out of Go's poller without shutting the socket down).
func (w *wsConn) detach() error {
	raw, err := w.nc.(syscall.Conn).SyscallConn()
	if err != nil {
		return err
	}
	fd := -1
	var derr error
	if err := raw.Control(func(s uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, s, syscall.F_DUPFD_CLOEXEC, 0)
		fd = int(r)
		if e != 0 {
			derr = e
		}
	}); err != nil {
		return err
	}
	if derr != nil {
		return fmt.Errorf("dup socket: %w", derr)
	}
	_ = w.nc.Close()
	w.fd = fd
	return nil
}

// feed parses the bytes just read after what is left of earlier reads and
// hands fn every whole data message and every control frame, in order.
// What fn gets points into data or w's buffers: it is valid during the
// call only. A frame's tail that has not arrived yet is kept.
func (w *wsConn) feed(data []byte, fn func(op byte, payload []byte)) error {
	b := data
	if len(w.in) > 0 {
		w.in = append(w.in, data...)
		b = w.in
	}
	for len(b) > 0 {
		fin, op, payload, n, err := nextFrame(b)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
		b = b[n:]
		switch {
		case op >= opClose: // control frames may come between fragments
			fn(op, payload)
		case op == opContinuation:
			if w.msgOp == 0 || len(w.msg)+len(payload) > maxMessage {
				return errProtocol
			}
			w.msg = append(w.msg, payload...)
			if fin {
				fn(w.msgOp, w.msg)
				w.msg, w.msgOp = w.msg[:0], 0
			}
		case w.msgOp != 0:
			return errProtocol // a new message before the last one ended
		case fin:
			fn(op, payload)
		default:
			w.msg, w.msgOp = append(w.msg[:0], payload...), op
		}
	}
	switch {
	case len(b) == 0 && cap(w.in) > 64<<10:
		w.in = nil // do not hold a large message's buffer
	case len(b) == 0:
		w.in = w.in[:0]
	case len(w.in) > 0: // b is w.in's tail
		w.in = w.in[:copy(w.in, b)]
	default:
		w.in = append(w.in[:0], b...)
	}
	return nil
}

// nextFrame parses the frame at the start of b. n is 0 when b does not
// hold a whole frame yet.
func nextFrame(b []byte) (fin bool, op byte, payload []byte, n int, err error) {
	if len(b) < 2 {
		return false, 0, nil, 0, nil
	}
	if b[0]&0x70 != 0 || b[1]&0x80 != 0 {
		return false, 0, nil, 0, errProtocol // extension bits, or masked by the server
	}
	fin, op = b[0]&0x80 != 0, b[0]&0x0F
	size, h := uint64(b[1]&0x7F), 2
	switch size {
	case 126:
		if len(b) < 4 {
			return false, 0, nil, 0, nil
		}
		size, h = uint64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return false, 0, nil, 0, nil
		}
		size, h = binary.BigEndian.Uint64(b[2:]), 10
	}
	if size > maxMessage {
		return false, 0, nil, 0, errProtocol
	}
	if uint64(len(b)-h) < size {
		return false, 0, nil, 0, nil
	}
	end := h + int(size)
	return fin, op, b[h:end], end, nil
}

// appendClientFrame appends a final frame of opcode op carrying payload,
// masked as a client's frames must be.
func appendClientFrame(dst []byte, op byte, payload []byte) []byte {
	var h [frameRoom]byte
	n := putClientHeader(h[:], op, len(payload))
	dst = append(dst, h[:n]...)
	start := len(dst)
	dst = append(dst, payload...)
	maskBytes(dst[start:], binary.LittleEndian.Uint32(h[n-4:n]))
	return dst
}

// frameInPlace turns buf, a payload built after frameRoom free bytes,
// into a masked text frame and returns it (a suffix of buf).
func frameInPlace(buf []byte) []byte {
	payload := buf[frameRoom:]
	var h [frameRoom]byte
	n := putClientHeader(h[:], opText, len(payload))
	copy(buf[frameRoom-n:], h[:n])
	maskBytes(payload, binary.LittleEndian.Uint32(h[n-4:n]))
	return buf[frameRoom-n:]
}

// putClientHeader writes a client frame's header, with a fresh mask key
// as its last 4 bytes, and returns its length.
func putClientHeader(h []byte, op byte, size int) int {
	h[0] = 0x80 | op
	n := 2
	switch {
	case size < 126:
		h[1] = 0x80 | byte(size)
	case size <= 0xFFFF:
		h[1] = 0x80 | 126
		binary.BigEndian.PutUint16(h[2:], uint16(size))
		n = 4
	default:
		h[1] = 0x80 | 127
		binary.BigEndian.PutUint64(h[2:], uint64(size))
		n = 10
	}
	binary.LittleEndian.PutUint32(h[n:], rand.Uint32())
	return n + 4
}

// maskBytes XORs b with the mask key (its bytes in little-endian order),
// eight bytes at a time.
func maskBytes(b []byte, key uint32) {
	k8 := uint64(key) | uint64(key)<<32
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k8)
		b = b[8:]
	}
	for i := range b {
		b[i] ^= byte(key >> (8 * (i % 4)))
	}
}

// writeFd writes all of b to the non-blocking socket fd; when its send
// buffer is full it waits a moment and tries again, until ctx ends.
func writeFd(ctx context.Context, fd int, b []byte) error {
	for len(b) > 0 {
		n, err := syscall.Write(fd, b)
		if n > 0 {
			b = b[n:]
		}
		switch {
		case err == nil || err == syscall.EINTR:
		case err == syscall.EAGAIN:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			time.Sleep(200 * time.Microsecond)
		default:
			return err
		}
	}
	return nil
}
