package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// conn is one simulated user: a Socket.IO client over coder/websocket that
// authenticates with its JWT, joins its room, sends file-upload-progress
// events with a sequence number and send time, and checks every progress
// event it receives from the other members of its room.
//
// It reads frames itself (rather than through e2e/sioclient) so that
// thousands of them cost the generator little: one pooled buffer per
// frame, and progress frames are scanned for the three fields the
// measurement needs instead of being decoded.
type conn struct {
	sh   *shard
	idx  int // global connection index
	room int // room index within the shard
	slot int // position in the room
	ws   *websocket.Conn
	pl   *pollConn   // instead of ws with --transport polling
	up   atomic.Bool // connected and joined, not closed yet

	// wmu orders sends, so that sequence numbers go out in order.
	wmu sync.Mutex
	seq int64

	// seqs is what was received from each room slot (read loop only).
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
	ws, _, err := websocket.Dial(ctx, sh.wsURL(c.idx), &websocket.DialOptions{
		HTTPClient:      sh.httpClient(c.idx),
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		return 0, 0, fmt.Errorf("dial: %w", err)
	}
	ws.SetReadLimit(4 << 20)
	c.ws = ws
	fail := func(err error) (time.Duration, time.Duration, error) {
		_ = ws.CloseNow()
		return 0, 0, err
	}
	// Engine.IO open packet.
	_, b, err := ws.Read(ctx)
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
	if err := ws.Write(ctx, websocket.MessageText, []byte(`40{"token":"`+tok+`"}`)); err != nil {
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
	if err := ws.Write(ctx, websocket.MessageText, frame); err != nil {
		return fail(fmt.Errorf("write join-room: %w", err))
	}
	if err := c.await(ctx, "430"); err != nil {
		return fail(err)
	}
	return connectDur, time.Since(start), nil
}

// await reads frames until one starting with prefix arrives, answering
// pings meanwhile. A CONNECT_ERROR, a refused ack or a close is an error.
func (c *conn) await(ctx context.Context, prefix string) error {
	for {
		var b []byte
		var err error
		if c.pl != nil {
			b, err = c.pl.read(ctx)
		} else {
			_, b, err = c.ws.Read(ctx)
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

var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// readLoop receives frames until the connection ends.
func (c *conn) readLoop() {
	sh := c.sh
	if c.pl != nil {
		for b := range c.pl.in {
			c.handle(b)
		}
		sh.gone(c)
		return
	}
	for {
		typ, r, err := c.ws.Reader(context.Background())
		if err != nil {
			break
		}
		bp := framePool.Get().(*[]byte)
		b, err := readAll((*bp)[:0], r)
		if err == nil && typ == websocket.MessageText {
			c.handle(b)
		}
		*bp = b[:0]
		framePool.Put(bp)
		if err != nil {
			break
		}
	}
	sh.gone(c)
}

func readAll(b []byte, r io.Reader) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

var (
	progressPrefix = []byte(`42["file-upload-progress",`)
	errorPrefix    = []byte(`42["error"`)
	keyUpload      = []byte(`"uploadId":"`)
	keySeq         = []byte(`"seq":`)
	keySentAt      = []byte(`"sentAt":`)
)

func (c *conn) handle(b []byte) {
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
		c.progress(b[len(progressPrefix):])
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
	return c.ws.Write(ctx, websocket.MessageText, b)
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

// progress checks one relayed progress event: whose it is (from its upload
// id), its sequence number and its send time.
func (c *conn) progress(b []byte) {
	now := time.Now().UnixMicro()
	sh := c.sh
	upload, ok1 := stringField(b, keyUpload)
	seq, ok2 := intField(b, keySeq)
	sentAt, ok3 := intField(b, keySentAt)
	if !ok1 || !ok2 || !ok3 {
		sh.c.Other.Add(1)
		return
	}
	i := bytes.LastIndexByte(upload, '-')
	sender, err := strconv.Atoi(string(upload[i+1:]))
	slot := sender - (sh.cfg.FirstConn + c.room*sh.cfg.RoomSize)
	if err != nil || slot < 0 || slot >= len(c.seqs) {
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

func intField(b, key []byte) (int64, bool) {
	i := bytes.Index(b, key)
	if i < 0 {
		return 0, false
	}
	b = b[i+len(key):]
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
	buf = buildProgress(buf, c, c.seq, time.Now().UnixMicro())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.write(ctx, buf); err != nil {
		c.seq--
		return buf, err
	}
	return buf, nil
}

// buildProgress appends the frame of progress event seq of c, sent at
// sentAt (Unix µs): the payload of the design plus seq and sentAt.
func buildProgress(buf []byte, c *conn, seq, sentAt int64) []byte {
	const total = 1 << 30
	run := c.sh.cfg.Run
	done := (seq * 64 << 10) % total
	buf = append(buf[:0], `42["file-upload-progress",{"fileId":"`...)
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
