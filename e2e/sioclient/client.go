// Package sioclient is a small Socket.IO v4 client (WebSocket transport
// only) for roomstream's tests and load generator. It speaks the protocol
// through connector/protocol, answers pings, supports acknowledgements and
// connection state recovery (pid and offset), and can dial from a chosen
// loopback source address so that one machine can open more connections
// than one address has ephemeral ports.
package sioclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/roomstream/roomstream/connector/protocol"
)

// Event is an event received from the server.
type Event struct {
	Name   string
	Args   []json.RawMessage // without the offset
	Offset string
	At     time.Time
}

// Decode unmarshals the first argument into v.
func (e Event) Decode(v any) error {
	if len(e.Args) == 0 {
		return errors.New("sioclient: event has no argument")
	}
	return json.Unmarshal(e.Args[0], v)
}

// Options of Dial.
type Options struct {
	// Token goes into the CONNECT auth object as {token}.
	Token string
	// PID and Offset ask for connection state recovery.
	PID, Offset string
	// OnEvent, when set, is called for every event from the read goroutine
	// (it must not block); otherwise events go to Events().
	OnEvent func(Event)
	// LocalIP is the source address to dial from (e.g. 127.0.0.7).
	LocalIP net.IP
	// Buffer is the capacity of Events() (default 10000). When full, the
	// client records an overflow instead of blocking.
	Buffer int
	// ConnectTimeout bounds the handshake (default 10 s).
	ConnectTimeout time.Duration
}

// ConnectError is a CONNECT_ERROR from the server.
type ConnectError struct {
	Message string
	Data    json.RawMessage
}

func (e *ConnectError) Error() string { return "connect_error: " + e.Message }

// Client is one Socket.IO connection to the main namespace.
type Client struct {
	conn      *websocket.Conn
	opts      Options
	SID       string
	PID       string
	Recovered bool

	events   chan Event
	Overflow atomic.Int64

	mu      sync.Mutex
	acks    map[int64]chan json.RawMessage
	nextAck int64
	offset  string

	done    chan struct{}
	errMu   sync.Mutex
	err     error
	reason  string
	closing atomic.Bool
}

// URL returns the Engine.IO WebSocket URL of a server base URL
// (http://host:port).
func URL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("sioclient: unsupported scheme %q", u.Scheme)
	}
	u.Path = "/socket.io/"
	u.RawQuery = "EIO=4&transport=websocket"
	return u.String(), nil
}

// Dial connects to base (http://host:port), performs the Engine.IO and
// Socket.IO handshakes and returns once CONNECT is answered.
func Dial(ctx context.Context, base string, opts *Options) (*Client, error) {
	if opts == nil {
		opts = &Options{}
	}
	if opts.Buffer == 0 {
		opts.Buffer = 10000
	}
	if opts.ConnectTimeout == 0 {
		opts.ConnectTimeout = 10 * time.Second
	}
	wsURL, err := URL(base)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.ConnectTimeout)
	defer cancel()
	dopts := &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled}
	if opts.LocalIP != nil {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: opts.LocalIP}, Timeout: opts.ConnectTimeout}
		dopts.HTTPClient = &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	}
	conn, _, err := websocket.Dial(ctx, wsURL, dopts)
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(16 << 20)
	c := &Client{conn: conn, opts: *opts, acks: map[int64]chan json.RawMessage{}, done: make(chan struct{})}
	if opts.OnEvent == nil {
		c.events = make(chan Event, opts.Buffer)
	}
	// Engine.IO open.
	typ, data, err := conn.Read(ctx)
	if err != nil {
		conn.CloseNow()
		return nil, fmt.Errorf("sioclient: read open packet: %w", err)
	}
	et, payload, err := protocol.DecodeEngine(data)
	if err != nil || typ != websocket.MessageText || et != protocol.EngineOpen {
		conn.CloseNow()
		return nil, fmt.Errorf("sioclient: expected an open packet, got %q", data)
	}
	var hs protocol.Handshake
	if err := json.Unmarshal(payload, &hs); err != nil {
		conn.CloseNow()
		return nil, fmt.Errorf("sioclient: bad open packet: %w", err)
	}
	// Socket.IO CONNECT.
	auth := map[string]string{}
	if opts.Token != "" {
		auth["token"] = opts.Token
	}
	if opts.PID != "" {
		auth["pid"], auth["offset"] = opts.PID, opts.Offset
	}
	b, _ := json.Marshal(auth)
	if err := conn.Write(ctx, websocket.MessageText, append([]byte("40"), b...)); err != nil {
		conn.CloseNow()
		return nil, err
	}
	connected := make(chan error, 1)
	go c.readLoop(connected)
	select {
	case err := <-connected:
		if err != nil {
			c.closeNow()
			return nil, err
		}
		return c, nil
	case <-ctx.Done():
		c.closeNow()
		return nil, fmt.Errorf("sioclient: no CONNECT reply: %w", ctx.Err())
	}
}

func (c *Client) readLoop(connected chan<- error) {
	defer close(c.done)
	defer func() {
		c.mu.Lock()
		for id, ch := range c.acks {
			close(ch)
			delete(c.acks, id)
		}
		c.mu.Unlock()
		if c.events != nil {
			close(c.events)
		}
	}()
	isConnected := false
	for {
		typ, data, err := c.conn.Read(context.Background())
		if err != nil {
			reason := "transport close"
			if c.closing.Load() {
				reason = "io client disconnect"
			}
			c.setErr(err, reason)
			if !isConnected {
				connected <- err
			}
			return
		}
		if typ != websocket.MessageText {
			continue
		}
		et, payload, err := protocol.DecodeEngine(data)
		if err != nil {
			c.setErr(err, "transport error")
			c.closeNow()
			continue
		}
		switch et {
		case protocol.EnginePing:
			_ = c.conn.Write(context.Background(), websocket.MessageText, []byte{byte(protocol.EnginePong)})
		case protocol.EngineMessage:
			p, err := protocol.Decode(payload)
			if err != nil {
				c.setErr(err, "parse error")
				c.closeNow()
				continue
			}
			switch p.Type {
			case protocol.Connect:
				var v struct{ SID, PID string }
				_ = json.Unmarshal(p.Data, &v)
				c.Recovered = v.PID != "" && v.PID == c.opts.PID
				c.SID, c.PID = v.SID, v.PID
				if !isConnected {
					isConnected = true
					connected <- nil
				}
			case protocol.ConnectError:
				var v struct {
					Message string          `json:"message"`
					Data    json.RawMessage `json:"data"`
				}
				_ = json.Unmarshal(p.Data, &v)
				if !isConnected {
					connected <- &ConnectError{Message: v.Message, Data: v.Data}
					isConnected = true // reported
				}
			case protocol.Event:
				name, args, err := protocol.EventArgs(p.Data)
				if err != nil {
					continue
				}
				ev := Event{Name: name, Args: args, At: time.Now()}
				if c.PID != "" && len(args) > 0 {
					var off string
					if json.Unmarshal(args[len(args)-1], &off) == nil {
						ev.Offset, ev.Args = off, args[:len(args)-1]
						c.mu.Lock()
						c.offset = off
						c.mu.Unlock()
					}
				}
				c.dispatch(ev)
			case protocol.Ack:
				c.mu.Lock()
				ch := c.acks[p.ID]
				delete(c.acks, p.ID)
				c.mu.Unlock()
				if ch != nil {
					var args []json.RawMessage
					_ = json.Unmarshal(p.Data, &args)
					if len(args) > 0 {
						ch <- args[0]
					}
					close(ch)
				}
			case protocol.Disconnect:
				c.setErr(errors.New("sioclient: disconnected by the server"), "io server disconnect")
				c.closeNow()
			}
		}
	}
}

func (c *Client) dispatch(ev Event) {
	if c.opts.OnEvent != nil {
		c.opts.OnEvent(ev)
		return
	}
	select {
	case c.events <- ev:
	default:
		c.Overflow.Add(1)
	}
}

func (c *Client) setErr(err error, reason string) {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	if c.err == nil {
		c.err, c.reason = err, reason
	}
}

// Events returns received events (nil when Options.OnEvent is set). It is
// closed when the connection ends.
func (c *Client) Events() <-chan Event { return c.events }

// Offset is the offset of the last event received.
func (c *Client) Offset() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}

// Emit sends an event without asking for an acknowledgement.
func (c *Client) Emit(ctx context.Context, event string, payload any) error {
	frame, err := eventFrame(event, payload, -1)
	if err != nil {
		return err
	}
	return c.conn.Write(ctx, websocket.MessageText, frame)
}

// EmitRaw sends a raw Engine.IO text frame (for protocol tests).
func (c *Client) EmitRaw(ctx context.Context, frame []byte) error {
	return c.conn.Write(ctx, websocket.MessageText, frame)
}

// ErrConnectionLost is what EmitAck returns when the connection ended
// before the ack came: the event may or may not have reached the server.
var ErrConnectionLost = errors.New("sioclient: connection lost")

// EmitAck sends an event and waits for its acknowledgement's first
// argument. Its error wraps ErrConnectionLost when the connection ended
// first, and the context's error when that ran out.
func (c *Client) EmitAck(ctx context.Context, event string, payload any) (json.RawMessage, error) {
	ch := make(chan json.RawMessage, 1)
	c.mu.Lock()
	id := c.nextAck
	c.nextAck++
	c.acks[id] = ch
	c.mu.Unlock()
	frame, err := eventFrame(event, payload, id)
	if err != nil {
		return nil, err
	}
	if err := c.conn.Write(ctx, websocket.MessageText, frame); err != nil {
		c.mu.Lock()
		delete(c.acks, id)
		c.mu.Unlock()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("sioclient: emit %s: %w", event, err)
		}
		// A WebSocket whose write failed is finished; make sure the read
		// loop sees it too, so Done is closed and the caller can reconnect.
		c.closeNow()
		return nil, fmt.Errorf("%w: emit %s: %v", ErrConnectionLost, event, err)
	}
	select {
	case v, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("%w before the ack of %s", ErrConnectionLost, event)
		}
		return v, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.acks, id)
		c.mu.Unlock()
		return nil, fmt.Errorf("sioclient: no ack for %s: %w", event, ctx.Err())
	}
}

func eventFrame(event string, payload any, ack int64) ([]byte, error) {
	var args [][]byte
	if payload != nil {
		b, err := json.Marshal(payload)
		if err != nil {
			return nil, err
		}
		args = append(args, b)
	}
	dst := protocol.AppendHeader(nil, protocol.Event, ack)
	dst = protocol.AppendEventBody(dst, event, args...)
	return protocol.CloseEventBody(dst, ""), nil
}

// Close says goodbye (Socket.IO DISCONNECT) and closes the connection
// normally: the server removes the socket from its rooms at once.
func (c *Client) Close() error {
	c.closing.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = c.conn.Write(ctx, websocket.MessageText, []byte("41"))
	err := c.conn.Close(websocket.StatusNormalClosure, "")
	<-c.done
	return err
}

// Drop ends the connection without a goodbye, as a network failure would:
// the server keeps the socket for recovery.
func (c *Client) Drop() {
	c.closing.Store(true)
	c.closeNow()
	<-c.done
}

func (c *Client) closeNow() { _ = c.conn.CloseNow() }

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Reason is why the connection ended, in the words socket.io-client uses
// ("io server disconnect", "transport close", ...); empty while open.
func (c *Client) Reason() string {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.reason
}

// Wait returns the next event named name (skipping others), or an error
// when ctx ends or the connection closes first.
func (c *Client) Wait(ctx context.Context, name string) (Event, error) {
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				return Event{}, fmt.Errorf("sioclient: connection closed while waiting for %s (%s)", name, c.Reason())
			}
			if ev.Name == name {
				return ev, nil
			}
		case <-ctx.Done():
			return Event{}, fmt.Errorf("sioclient: no %s: %w", name, ctx.Err())
		}
	}
}

// IsConnectError reports whether err is a CONNECT_ERROR and returns it.
func IsConnectError(err error) (*ConnectError, bool) {
	var ce *ConnectError
	ok := errors.As(err, &ce)
	return ce, ok
}
