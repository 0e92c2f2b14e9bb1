package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// conn is one simulated user: a Socket.IO client over WebSocket (its own
// minimal client, websocket.go) that authenticates with its JWT, joins its
// room, sends file-upload-progress events with a sequence number and send
// time, and checks every progress event it receives from the other members
// of its room.
//
// Once joined, its socket is read by its shard's reactor (reactor.go) and
// progress frames are scanned in place for the three fields the
// measurement needs instead of being decoded: thousands of users must cost
// the generator far less than the servers they load.
type conn struct {
	sh   *shard
	idx  int // global connection index
	room int // room index within the shard
	slot int // position in the room
	ws   *wsConn
	pl   *pollConn   // instead of ws with --transport polling
	up   atomic.Bool // connected and joined, not closed yet
	// reactor reads ws once set (its store publishes ws to the reactor).
	reactor atomic.Pointer[reactor]

	// wmu orders sends, so that sequence numbers go out in order, and
	// guards writes to the socket.
	wmu sync.Mutex
	seq int64

	// seqs is what was received from each room slot (reader only).
	seqs []seqWindow
}

var errRefused = errors.New("bench: refused")

// connect dials, performs the Engine.IO and Socket.IO handshakes and joins
// the room; it returns the time to CONNECT and to the join's ack.
func (c *conn) connect(ctx context.Context) (connectDur, joinDur time.Duration, err error) {
	sh := c.sh
	start := time.Now()
	if sh.cfg.Polling {
		return c.connectPolling(ctx, start)
	}
	host, path := sh.wsTarget(c.idx)
	ws, err := dialWebSocket(ctx, sh.dialer(c.idx), host, path)
	if err != nil {
		return 0, 0, fmt.Errorf("dial: %w", err)
	}
	c.ws = ws
	fail := func(err error) (time.Duration, time.Duration, error) {
		_ = ws.nc.Close()
		return 0, 0, err
	}
	// Engine.IO open packet.
	b, err := ws.readMessage(ctx)
	if err != nil {
		return fail(fmt.Errorf("read open packet: %w", err))
	}
	if len(b) == 0 || b[0] != '0' {
		return fail(fmt.Errorf("expected an open packet, got %.60q", b))
	}
	tok, err := sh.token(c.idx)
	if err != nil {
		return fail(err)
	}
	if err := c.write(ctx, []byte(`40{"token":"`+tok+`"}`)); err != nil {
		return fail(fmt.Errorf("write CONNECT: %w", err))
	}
	if err := c.await(ctx, "40"); err != nil {
		return fail(err)
	}
	connectDur = time.Since(start)
	if !sh.cfg.Join {
		return connectDur, 0, nil
	}
	frame := []byte(`420["join-room",{"roomId":"` + sh.roomID(c.room) + `"}]`)
	if err := c.write(ctx, frame); err != nil {
		return fail(fmt.Errorf("write join-room: %w", err))
	}
	if err := c.await(ctx, "430"); err != nil {
		return fail(err)
	}
	return connectDur, time.Since(start), nil
}

// await reads messages until one starting with prefix arrives, answering
// pings meanwhile. A CONNECT_ERROR, a refused ack or a close is an error.
func (c *conn) await(ctx context.Context, prefix string) error {
	for {
		var b []byte
		var err error
		if c.pl != nil {
			b, err = c.pl.read(ctx)
		} else {
			b, err = c.ws.readMessage(ctx)
		}
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", prefix, err)
		}
		switch {
		case bytes.HasPrefix(b, []byte(prefix)):
			if prefix == "430" && !bytes.Contains(b, []byte(`"ok":true`)) {
				return fmt.Errorf("%w: join-room: %.200s", errRefused, b)
			}
			return nil
		case bytes.HasPrefix(b, []byte("44")):
			return fmt.Errorf("%w: connect_error: %.200s", errRefused, b)
		case bytes.HasPrefix(b, []byte("41")):
			return fmt.Errorf("%w: disconnected by the server", errRefused)
		case len(b) == 1 && b[0] == '2':
			if err := c.write(ctx, []byte{'3'}); err != nil {
				return err
			}
		case bytes.HasPrefix(b, []byte(`42["error"`)):
			c.sh.noteError(b)
		}
	}
}

// startReading hands a joined connection to its reader: the reactor for
// WebSocket, a goroutine for long-polling. What arrived with the join's
// ack is handled first.
func (c *conn) startReading() error {
	if c.pl != nil {
		go c.pollLoop()
		return nil
	}
	now := time.Now().UnixMicro()
	for _, m := range c.ws.queue {
		c.handleAt(m, now)
	}
	c.ws.queue = nil
	if err := c.ws.detach(); err != nil {
		_ = c.ws.nc.Close()
		return err
	}
	if err := c.sh.reactorFor(c).add(c); err != nil {
		c.wmu.Lock()
		_ = syscall.Close(c.ws.fd)
		c.ws.fd, c.ws.closed = -1, true
		c.wmu.Unlock()
		return err
	}
	return nil
}

// pollLoop receives the packets of a long-polling connection until it
// ends.
func (c *conn) pollLoop() {
	for b := range c.pl.in {
		c.handle(b)
	}
	c.sh.gone(c)
}

// frame handles one frame the reactor read at now; it reports whether
// the connection is to be closed.
func (c *conn) frame(op byte, p []byte, now int64) (closing bool) {
	switch op {
	case opText:
		c.handleAt(p, now)
	case opPing:
		pong := bytes.Clone(p)
		go func() { _ = c.writeFrame(opPong, pong) }()
	case opClose:
		c.sh.noteErr("closed by the server (websocket close frame)")
		return true
	}
	return false
}

var (
	progressPrefix = []byte(`42["file-upload-progress",`)
	errorPrefix    = []byte(`42["error"`)
	keyUpload      = []byte(`"uploadId":"`)
	keySeq         = []byte(`"seq":`)
	keySentAt      = []byte(`"sentAt":`)
)

// handle handles one packet received now.
func (c *conn) handle(b []byte) { c.handleAt(b, time.Now().UnixMicro()) }

// handleAt handles one packet received at now (Unix µs).
func (c *conn) handleAt(b []byte, now int64) {
	sh := c.sh
	if len(b) == 0 {
		return
	}
	switch b[0] {
	case '2': // ping
		go c.pong()
		return
	case '4':
	default:
		return
	}
	switch {
	case bytes.HasPrefix(b, progressPrefix):
		c.progress(b[len(progressPrefix):], now)
	case bytes.HasPrefix(b, errorPrefix):
		sh.noteError(b)
	case bytes.HasPrefix(b, []byte("41")):
		sh.noteError([]byte("disconnected by the server (41)"))
	default:
		sh.c.Other.Add(1)
	}
}

func (c *conn) pong() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = c.write(ctx, []byte{'3'})
}

// write sends one packet on the connection's transport.
func (c *conn) write(ctx context.Context, b []byte) error {
	if c.pl != nil {
		return c.pl.write(ctx, b)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(ctx, appendClientFrame(nil, opText, b))
}

// writeFrame sends a control frame (a pong), as the reactor's answers.
func (c *conn) writeFrame(op byte, p []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(ctx, appendClientFrame(nil, op, p))
}

// writeLocked writes a frame, c.wmu held: through nc until the reactor
// reads the socket, then to the socket itself.
func (c *conn) writeLocked(ctx context.Context, frame []byte) error {
	switch {
	case c.ws.closed:
		return errClosed
	case c.ws.fd < 0:
		if dl, ok := ctx.Deadline(); ok {
			_ = c.ws.nc.SetWriteDeadline(dl)
		}
		_, err := c.ws.nc.Write(frame)
		return err
	}
	return writeFd(ctx, c.ws.fd, frame)
}

// connectPolling is connect over HTTP long-polling.
func (c *conn) connectPolling(ctx context.Context, start time.Time) (connectDur, joinDur time.Duration, err error) {
	sh := c.sh
	pl, err := dialPoll(ctx, sh.httpClient(c.idx), sh.pollURL(c.idx))
	if err != nil {
		return 0, 0, err
	}
	c.pl = pl
	fail := func(err error) (time.Duration, time.Duration, error) {
		pl.close()
		return 0, 0, err
	}
	if b, err := pl.read(ctx); err != nil || len(b) == 0 || b[0] != '0' {
		return fail(fmt.Errorf("expected an open packet, got %.60q (%v)", b, err))
	}
	tok, err := sh.token(c.idx)
	if err != nil {
		return fail(err)
	}
	if err := pl.write(ctx, []byte(`40{"token":"`+tok+`"}`)); err != nil {
		return fail(fmt.Errorf("write CONNECT: %w", err))
	}
	if err := c.await(ctx, "40"); err != nil {
		return fail(err)
	}
	connectDur = time.Since(start)
	if !sh.cfg.Join {
		return connectDur, 0, nil
	}
	if err := pl.write(ctx, []byte(`420["join-room",{"roomId":"`+sh.roomID(c.room)+`"}]`)); err != nil {
		return fail(fmt.Errorf("write join-room: %w", err))
	}
	if err := c.await(ctx, "430"); err != nil {
		return fail(err)
	}
	return connectDur, time.Since(start), nil
}

// progress checks one relayed progress event, received at now: whose it
// is (from its upload id), its sequence number and its send time.
func (c *conn) progress(b []byte, now int64) {
	sh := c.sh
	upload, ok1 := stringField(b, keyUpload)
	seq, ok2 := intField(b, keySeq)
	sentAt, ok3 := intField(b, keySentAt)
	if !ok1 || !ok2 || !ok3 {
		sh.c.Other.Add(1)
		return
	}
	i := bytes.LastIndexByte(upload, '-')
	sender, ok := intField(upload[i+1:], nil)
	slot := int(sender) - (sh.cfg.FirstConn + c.room*sh.cfg.RoomSize)
	if !ok || slot < 0 || slot >= len(c.seqs) {
		sh.c.Other.Add(1) // not from this room: should not happen
		return
	}
	r, skipped := c.seqs[slot].receive(seq)
	switch r {
	case duplicate:
		sh.c.Dups.Add(1)
		return
	case reordered:
		// A first receipt all the same: it is delivered, and the step
		// fails as if it had been lost.
		sh.c.Reordered.Add(1)
	}
	if skipped > 0 {
		sh.c.Gaps.Add(skipped)
	}
	if slot == c.slot {
		sh.c.Echoes.Add(1)
		return
	}
	// Latency first: once Delivered counts a delivery, its latency is in
	// the histograms.
	lat := now - sentAt
	sh.lat.Record(lat)
	sh.tickLat.Load().Record(lat)
	sh.stepLat.Load().Record(lat)
	sh.c.Delivered.Add(1)
}

// intField parses the digits after key in b (at its start when key is
// nil).
func intField(b, key []byte) (int64, bool) {
	if key != nil {
		i := bytes.Index(b, key)
		if i < 0 {
			return 0, false
		}
		b = b[i+len(key):]
	}
	var v int64
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		v = v*10 + int64(b[n]-'0')
		n++
	}
	return v, n > 0
}

func stringField(b, key []byte) ([]byte, bool) {
	i := bytes.Index(b, key)
	if i < 0 {
		return nil, false
	}
	b = b[i+len(key):]
	j := bytes.IndexByte(b, '"')
	if j < 0 {
		return nil, false
	}
	return b[:j], true
}

// send emits one file-upload-progress event. The frame is built in buf.
func (c *conn) send(buf []byte) ([]byte, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.seq++
	buf = buildProgress(append(buf[:0], make([]byte, frameRoom)...), c, c.seq, time.Now().UnixMicro())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	if c.pl != nil {
		err = c.pl.write(ctx, buf[frameRoom:])
	} else {
		err = c.writeLocked(ctx, frameInPlace(buf))
	}
	if err != nil {
		c.seq--
	}
	return buf, err
}

// buildProgress appends to buf the packet of progress event seq of c,
// sent at sentAt (Unix µs): the payload of the design plus seq and sentAt.
func buildProgress(buf []byte, c *conn, seq, sentAt int64) []byte {
	const total = 1 << 30
	run := c.sh.cfg.Run
	done := (seq * 64 << 10) % total
	buf = append(buf, `42["file-upload-progress",{"fileId":"`...)
	buf = append(buf, run...)
	buf = append(buf, "-f"...)
	buf = strconv.AppendInt(buf, int64(c.idx), 10)
	buf = append(buf, `","uploadId":"`...)
	buf = append(buf, run...)
	buf = append(buf, "-"...)
	buf = strconv.AppendInt(buf, int64(c.idx), 10)
	buf = append(buf, `","fileName":"bench.bin","roomId":"`...)
	buf = append(buf, c.sh.roomID(c.room)...)
	buf = append(buf, `","bytesUploaded":`...)
	buf = strconv.AppendInt(buf, done, 10)
	buf = append(buf, `,"totalBytes":`...)
	buf = strconv.AppendInt(buf, total, 10)
	buf = append(buf, `,"percentage":`...)
	buf = strconv.AppendFloat(buf, float64(done)*100/total, 'f', 2, 64)
	buf = append(buf, `,"seq":`...)
	buf = strconv.AppendInt(buf, seq, 10)
	buf = append(buf, `,"sentAt":`...)
	buf = strconv.AppendInt(buf, sentAt, 10)
	return append(buf, "}]"...)
}
