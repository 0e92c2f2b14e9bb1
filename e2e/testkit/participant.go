package testkit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/roomstream/roomstream/schemas"
)

// Participant is one Member in a room: it joins, starts an upload and
// then reports progress (bytesUploaded = seq, strictly increasing) until
// told to stop, waiting for each ack. It never retries: an event whose
// ack did not come may or may not have been accepted, and the inbound
// streams tell which (Truth).
type Participant struct {
	M      *Member
	Room   string
	Upload string

	mu      sync.Mutex
	seq     int64
	acked   []Key
	refused map[schemas.Code]int
	unknown []Key
	errs    []string
	waits   []Wait
}

// Wait is how long one progress report waited for its ack (or for the
// connection to fail), from when it was sent; OK: it was acknowledged.
type Wait struct {
	Sent time.Time
	Took time.Duration
	OK   bool
}

// NewParticipant returns a participant of m in room; Setup joins it.
func NewParticipant(m *Member, room string) *Participant {
	return &Participant{M: m, Room: room, Upload: "up-" + m.User, refused: map[schemas.Code]int{}}
}

// Setup joins the room and starts the upload, retrying what the server
// refused as temporary.
func (p *Participant) Setup(ctx context.Context) error {
	steps := []struct {
		event   string
		payload any
	}{
		{schemas.EventJoinRoom, map[string]string{"roomId": p.Room, "userId": p.M.User}},
		{schemas.EventFileUploadStarted, map[string]any{"fileId": p.Upload, "uploadId": p.Upload, "fileName": p.Upload + ".bin",
			"roomId": p.Room, "userId": p.M.User, "size": 1 << 30}},
	}
	for _, s := range steps {
		for {
			a, err := p.M.Ack(ctx, s.event, s.payload)
			if err == nil && a.OK {
				break
			}
			if err == nil && a.Error != nil && a.Error.Temporary {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			return fmt.Errorf("%s %s: %+v %v", p.M.User, s.event, a.Error, err)
		}
	}
	return nil
}

// Run reports progress every interval until stop is closed.
func (p *Participant) Run(stop <-chan struct{}, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		p.mu.Lock()
		p.seq++
		seq := p.seq
		p.mu.Unlock()
		k := Key{User: p.M.User, Upload: p.Upload, Bytes: seq}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		sent := time.Now()
		a, err := p.M.Ack(ctx, schemas.EventFileUploadProgress, map[string]any{"fileId": p.Upload, "uploadId": p.Upload,
			"fileName": p.Upload + ".bin", "roomId": p.Room, "userId": p.M.User, "bytesUploaded": seq, "totalBytes": 1 << 30,
			"percentage": float64(seq) * 100 / (1 << 30), "seq": seq, "sentAt": sent.UnixMilli()})
		took := time.Since(sent)
		cancel()
		p.mu.Lock()
		p.waits = append(p.waits, Wait{Sent: sent, Took: took, OK: err == nil && a.OK})
		switch {
		case err != nil:
			p.unknown = append(p.unknown, k)
			if !errors.Is(err, ErrUnknown) {
				p.errs = append(p.errs, fmt.Sprintf("seq %d: %v", seq, err))
			}
		case a.OK:
			p.acked = append(p.acked, k)
		case a.Error != nil && a.Error.Temporary:
			p.refused[a.Error.Code]++
		default:
			p.errs = append(p.errs, fmt.Sprintf("seq %d refused: %+v", seq, a.Error))
		}
		p.mu.Unlock()
	}
}

// Report is what a participant sent and heard back so far.
type Report struct {
	Sent    int64 // progress reports sent
	Acked   []Key // acknowledged, in order
	Unknown []Key // no ack: the connection dropped first
	Refused int   // refused as temporary
	Errs    []string
}

// Report returns a copy of what the participant sent and heard back.
func (p *Participant) Report() Report {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := Report{Sent: p.seq, Acked: append([]Key(nil), p.acked...), Unknown: append([]Key(nil), p.unknown...),
		Errs: append([]string(nil), p.errs...)}
	for _, n := range p.refused {
		r.Refused += n
	}
	return r
}

// AckedCount is how many reports were acknowledged.
func (p *Participant) AckedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.acked)
}

// Waits returns how long the reports sent from since on waited.
func (p *Participant) Waits(since time.Time) []Wait {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Wait
	for _, w := range p.waits {
		if !w.Sent.Before(since) {
			out = append(out, w)
		}
	}
	return out
}
