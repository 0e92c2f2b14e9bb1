package connector

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
)

// Buffer sizes of an accepted connection. net/http hands a hijacked
// connection 4 KiB buffers for reading and for writing, and every idle
// socket would keep them for its lifetime; Socket.IO frames are mostly a
// few hundred bytes, so the connector gives coder/websocket smaller ones.
// A frame larger than a buffer still goes through, in more than one read
// or write call. coder/websocket writes only control frames (pongs, the
// close frame: at most 131 bytes); the connector frames its data messages
// itself (wire.go), so its write buffer is small.
const (
	connReadBuffer  = 512
	connWriteBuffer = 160
)

// smallBuffers wraps the ResponseWriter given to websocket.Accept so that
// the hijacked connection comes with small buffers, and with a wireWriter
// between coder/websocket's writes and the connection.
type smallBuffers struct {
	http.ResponseWriter
	wire *wireWriter
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
	w.wire = newWireWriter(c)
	return c, bufio.NewReadWriter(r, bufio.NewWriterSize(w.wire, connWriteBuffer)), nil
}
