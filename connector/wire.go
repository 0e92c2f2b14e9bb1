package connector

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"time"
)

// cork owns the bytes going out on one connection. The socket's frames
// are framed here (server frames: FIN, text, no mask) and written with one
// system call per batch; coder/websocket's own writes (pongs, the close
// frame) come through Write and go out after whatever is pending, so the
// two never interleave inside a frame.
//
// tryFrames is the outbound reader's path: a non-blocking write, so that
// a client that stopped reading can never hold up the reader; what the
// kernel does not take stays pending for the socket's writer goroutine
// (flush), which writes it blocking, watched by the write watchdog.
type cork struct {
	mu   sync.Mutex
	conn net.Conn
	raw  syscall.RawConn // nil when the connection is not a socket: no non-blocking writes
	// buf holds bytes not written yet, in order; while it is not empty
	// the socket's writer goroutine runs and will write it.
	buf *[]byte
}

func newCork(c net.Conn) *cork {
	k := &cork{conn: c}
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			k.raw = raw
		}
	}
	return k
}

var corkBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxCorked is the most a cork keeps in its buffer after a write.
const maxCorked = 64 << 10

// Write takes coder/websocket's writes: straight to the connection, or
// behind what is pending.
func (c *cork) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buf == nil {
		return c.conn.Write(p)
	}
	*c.buf = append(*c.buf, p...)
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

func (c *cork) frame(payloads [][]byte) {
	if c.buf == nil {
		c.buf = corkBufs.Get().(*[]byte)
	}
	for _, p := range payloads {
		*c.buf = appendFrame(*c.buf, p)
	}
}

func (c *cork) release() {
	b := c.buf
	c.buf = nil
	if cap(*b) <= maxCorked {
		*b = (*b)[:0]
		corkBufs.Put(b)
	}
}

// errNoTry means the cork cannot try a non-blocking write now (not a
// socket, or coder/websocket is writing): the frames go to the writer.
var errNoTry = errors.New("connector: no non-blocking write now")

// tryFrames writes frames without blocking. done is false when some bytes
// are left pending (the caller must run the writer), or, with errNoTry,
// when nothing was taken.
func (c *cork) tryFrames(frames ...[]byte) (done bool, err error) {
	if c.raw == nil || !c.mu.TryLock() {
		return false, errNoTry
	}
	defer c.mu.Unlock()
	if c.buf != nil {
		// Bytes still pending: the writer writes them first.
		return false, errNoTry
	}
	c.frame(frames)
	var n int
	var werr error
	if err := c.raw.Write(func(fd uintptr) bool {
		n, werr = syscall.Write(int(fd), *c.buf)
		return true // never wait: what is left goes to the writer
	}); err != nil {
		return false, err
	}
	if n < 0 {
		n = 0
	}
	if werr != nil && !errors.Is(werr, syscall.EAGAIN) && !errors.Is(werr, syscall.EINTR) {
		return false, werr
	}
	if n == len(*c.buf) {
		c.release()
		return true, nil
	}
	rest := copy(*c.buf, (*c.buf)[n:])
	*c.buf = (*c.buf)[:rest]
	return false, nil
}

// writeFrames writes what is pending, then frames, blocking until the
// kernel took it all or timeout passed (the writer goroutine's path).
func (c *cork) writeFrames(frames [][]byte, timeout time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frame(frames)
	var err error
	if len(*c.buf) > 0 {
		_ = c.conn.SetWriteDeadline(time.Now().Add(timeout))
		_, err = c.conn.Write(*c.buf)
		// coder/websocket's own writes (pongs, the close frame) come
		// through Write with deadlines of their own.
		_ = c.conn.SetWriteDeadline(time.Time{})
	}
	c.release()
	return err
}

// pending tells whether bytes wait to be written.
func (c *cork) pending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf != nil
}

// discard drops what waits (the connection broke).
func (c *cork) discard() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buf != nil {
		c.release()
	}
}
