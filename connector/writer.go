package connector

import (
	"context"
	"time"

	"github.com/coder/websocket"
)

// writeLoop is the socket's writer: it runs while frames are queued,
// writes them in order and exits when the queue is empty, so that an idle
// socket holds no writer goroutine. Once the connection is ending (end),
// it writes what is queued (nothing after a ping timeout: the client is
// gone) and closes the connection with the status end recorded.
func (so *socket) writeLoop() {
	broken := false
	for {
		so.qmu.Lock()
		batch := so.queue
		so.queue, so.qbytes, so.qwire = nil, 0, 0
		if so.closeWanted && so.cause == causePing {
			batch = nil // the client is gone
			if so.wire != nil {
				so.wire.discard()
			}
		}
		pending := so.wire != nil && so.wire.pending()
		if len(batch) == 0 && !pending {
			if so.closeWanted {
				so.closed = true
				so.qmu.Unlock()
				if so.cause == causePing {
					// The client is gone: no close handshake to wait for.
					_ = so.conn.CloseNow()
				} else {
					code, reason := so.closeStatus()
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
					_ = so.closeConn(ctx, code, reason)
					cancel()
				}
				close(so.writerDone)
				return
			}
			so.writing = false
			so.qmu.Unlock()
			return
		}
		so.qmu.Unlock()
		if broken {
			if so.wire != nil {
				so.wire.discard()
			}
			continue
		}
		// Every write has a deadline: a client that stops reading is
		// disconnected once one write has waited WriteTimeout.
		var err error
		if so.wire != nil {
			// What an earlier non-blocking write left, then the batch,
			// in one system call.
			err = so.wire.writeFrames(batch, so.srv.writeTimeout())
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), so.srv.writeTimeout())
			for _, b := range batch {
				if err = so.conn.Write(ctx, websocket.MessageText, b); err != nil {
					break
				}
			}
			cancel()
		}
		if err != nil {
			broken = true
			so.end(causeTransport, websocket.StatusGoingAway, "")
			_ = so.conn.CloseNow()
		}
	}
}

// writeTimeout is how long one write to a client may block.
func (s *Server) writeTimeout() time.Duration {
	if s.cfg.WriteTimeout > 0 {
		return s.cfg.WriteTimeout
	}
	return defaultWriteTimeout
}

const defaultWriteTimeout = 10 * time.Second

// closeConn closes the WebSocket with a status, without waiting long for
// the client's close frame.
func (so *socket) closeConn(ctx context.Context, code websocket.StatusCode, reason string) error {
	done := make(chan error, 1)
	go func() { done <- so.conn.Close(code, reason) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return so.conn.CloseNow()
	}
}
