package connector

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"time"
)

// wireWriter owns the bytes going out on one connection. The socket's frames
// are framed here (server frames: FIN, text, no mask) and written with one
// system call per batch; coder/websocket's own writes (pongs, the close
// frame) come through Write and go out after whatever is pending, so the
// two never interleave inside a frame.
//
// tryFrames is the outbound reader's path: a non-blocking write, so that
// a client that stopped reading can never hold up the reader; what the
// kernel does not take stays pending for the socket's writer goroutine
// (writeLoop), which writes it blocking, watched by the write watchdog.
type wireWriter struct {
	mu   sync.Mutex
	conn net.Conn
	raw  syscall.RawConn // nil when the connection is not a socket: no non-blocking writes
	// buf holds bytes not written yet, in order; while it is not empty
	// the socket's writer goroutine runs and will write it.
	buf *[]byte
	// tryFn is tryWrite as a function value, made once: the non-blocking
	// write passes it to the connection, and a closure made per write
	// would cost allocations per delivery. tried and tryErr are its
	// result (guarded by mu).
	tryFn  func(fd uintptr) bool
	tried  int
	tryErr error
}

func newWireWriter(c net.Conn) *wireWriter {
	w := &wireWriter{conn: c}
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			w.raw = raw
			w.tryFn = w.tryWrite
		}
	}
	return w
}

var wireBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxWireBuffer is the most a wireWriter keeps in its buffer after a
// write.
const maxWireBuffer = 64 << 10

// Write takes coder/websocket's writes: straight to the connection, or
// behind what is pending.
func (w *wireWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf == nil {
		return w.conn.Write(p)
	}
	*w.buf = append(*w.buf, p...)
	return len(p), nil
}

// appendFrame appends a server text frame holding payload.
func appendFrame(dst, payload []byte) []byte {
	n := len(payload)
	switch {
	case n < 126:
		dst = append(dst, 0x81, byte(n))
	case n < 1<<16:
		dst = append(dst, 0x81, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x81, 127, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32),
			byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, payload...)
}

// frameSize is the size of the frame appendFrame makes of n bytes.
func frameSize(n int) int {
	switch {
	case n < 126:
		return n + 2
	case n < 1<<16:
		return n + 4
	default:
		return n + 10
	}
}

func (w *wireWriter) frame(payloads [][]byte) {
	if w.buf == nil {
		w.buf = wireBufs.Get().(*[]byte)
	}
	for _, p := range payloads {
		*w.buf = appendFrame(*w.buf, p)
	}
}

func (w *wireWriter) release() {
	b := w.buf
	w.buf = nil
	if cap(*b) <= maxWireBuffer {
		*b = (*b)[:0]
		wireBufs.Put(b)
	}
}

// errNoTry means the wireWriter cannot try a non-blocking write now (not a
// socket, or coder/websocket is writing): the frames go to the writer.
var errNoTry = errors.New("connector: no non-blocking write now")

// tryFrames writes frames, in one system call, without blocking. left is
// how many of their bytes the kernel did not take: they stay pending, and
// the caller must run the writer. With errNoTry nothing was taken.
func (w *wireWriter) tryFrames(frames ...[]byte) (left int, err error) {
	if w.raw == nil || !w.mu.TryLock() {
		return 0, errNoTry
	}
	defer w.mu.Unlock()
	if w.buf != nil {
		// Bytes still pending: the writer writes them first.
		return 0, errNoTry
	}
	w.frame(frames)
	w.tried, w.tryErr = 0, nil
	if err := w.raw.Write(w.tryFn); err != nil {
		return len(*w.buf), err
	}
	n, werr := max(w.tried, 0), w.tryErr
	w.tryErr = nil
	if werr != nil && !errors.Is(werr, syscall.EAGAIN) && !errors.Is(werr, syscall.EINTR) {
		return len(*w.buf), werr
	}
	if n == len(*w.buf) {
		w.release()
		return 0, nil
	}
	rest := copy(*w.buf, (*w.buf)[n:])
	*w.buf = (*w.buf)[:rest]
	return rest, nil
}

// tryWrite is the non-blocking write of what buf holds (tryFrames).
func (w *wireWriter) tryWrite(fd uintptr) bool {
	w.tried, w.tryErr = syscall.Write(int(fd), *w.buf)
	return true // never wait: what is left goes to the writer
}

// writeFrames writes what is pending, then frames, blocking until the
// kernel took it all or timeout passed (the writer goroutine's path).
func (w *wireWriter) writeFrames(frames [][]byte, timeout time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.frame(frames)
	var err error
	if len(*w.buf) > 0 {
		_ = w.conn.SetWriteDeadline(time.Now().Add(timeout))
		_, err = w.conn.Write(*w.buf)
		// coder/websocket's own writes (pongs, the close frame) come
		// through Write with deadlines of their own.
		_ = w.conn.SetWriteDeadline(time.Time{})
	}
	w.release()
	return err
}

// pending tells whether bytes wait to be written.
func (w *wireWriter) pending() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf != nil
}

// discard drops what waits (the connection broke).
func (w *wireWriter) discard() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf != nil {
		w.release()
	}
}
