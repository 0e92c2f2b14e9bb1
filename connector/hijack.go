package connector

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
)

// Buffer sizes of an accepted connection. net/http hands a hijacked
// connection 4 KiB buffers for reading and for writing, and every idle
// socket would keep them for its lifetime; Socket.IO frames are mostly a
// few hundred bytes, so the connector gives coder/websocket smaller ones.
// A frame larger than a buffer still goes through, in more than one read
// or write call.
const (
	connReadBuffer  = 512
	connWriteBuffer = 1024
)

// smallBuffers wraps the ResponseWriter given to websocket.Accept so that
// the hijacked connection comes with small buffers, and with a cork
// between coder/websocket's writes and the connection.
type smallBuffers struct {
	http.ResponseWriter
	cork *cork
}

func (w *smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("connector: the ResponseWriter cannot be hijacked")
	}
	c, brw, err := h.Hijack()
	if err != nil {
		return nil, nil, err
	}
	// net/http has written the 101 response already; flush whatever is
	// left to be safe.
	if err := brw.Writer.Flush(); err != nil {
		_ = c.Close()
		return nil, nil, err
	}
	r := bufio.NewReaderSize(c, connReadBuffer)
	if n := brw.Reader.Buffered(); n > 0 {
		// Bytes the client sent right after its request: keep them
		// buffered, where coder/websocket looks for them.
		pending, _ := brw.Reader.Peek(n)
		r = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(pending)), c), max(connReadBuffer, n))
		if _, err := r.Peek(n); err != nil {
			_ = c.Close()
			return nil, nil, err
		}
	}
	w.cork = &cork{conn: c}
	return c, bufio.NewReadWriter(r, bufio.NewWriterSize(w.cork, connWriteBuffer)), nil
}

// cork gathers what coder/websocket writes while the socket's writer has
// several frames to send, and sends it in one write: a WebSocket frame per
// Socket.IO packet, but one system call per batch instead of one per frame
// (coder/websocket flushes after every message). Uncorked, writes go
// straight through. coder/websocket serializes its own writes; the lock
// orders them with cork and uncork.
type cork struct {
	mu     sync.Mutex
	conn   net.Conn
	corked bool
	buf    *[]byte
}

var corkBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxCorked is how much a cork holds before it writes anyway.
const maxCorked = 64 << 10

func (c *cork) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return c.conn.Write(p)
	}
	if c.buf == nil {
		c.buf = corkBufs.Get().(*[]byte)
	}
	*c.buf = append(*c.buf, p...)
	if len(*c.buf) >= maxCorked {
		return len(p), c.flushLocked()
	}
	return len(p), nil
}

// hold starts gathering writes.
func (c *cork) hold() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// release writes what was gathered and lets writes through again.
func (c *cork) release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	return c.flushLocked()
}

func (c *cork) flushLocked() error {
	if c.buf == nil {
		return nil
	}
	b := c.buf
	c.buf = nil
	_, err := c.conn.Write(*b)
	if cap(*b) <= maxCorked*2 {
		*b = (*b)[:0]
		corkBufs.Put(b)
	}
	return err
}
