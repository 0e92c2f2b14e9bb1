package hooks

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/streams"
)

// item is one feed event read for delivery.
type item struct {
	msg  redis.XMessage
	redo bool // read from the requeued dead letters
	ev   *streams.FeedEvent
}

// partition is the delivery state of one partition: a queue per room,
// each drained by a goroutine of its own, so that a room's events go out
// in order and one room's retries hold up that room only.
type partition struct {
	h *Hooks
	r *run

	mu     sync.Mutex
	rooms  map[string][]item
	queued int
	// inHand holds the entries queued or being delivered (stream entry
	// ids; a requeued letter's prefixed with "r"), so that reading the
	// pending entries again skips them.
	inHand map[string]bool
	// rescan: an entry was done but its acknowledgement failed; it is
	// still pending, and the next read starts over from the pending
	// entries to deliver it again.
	rescan bool
	space  chan struct{} // a queued event is done
	wg     sync.WaitGroup
}

// deliverPartition reads r's partition and delivers its events until r
// stops. It first reads what the partition's consumer left pending (the
// partition's previous holder crashed, or stopped mid-delivery: those are
// delivered again, at least once), then new entries.
func (h *Hooks) deliverPartition(r *run) {
	defer close(r.done)
	log := h.log.With("partition", r.p)
	bo := streams.NewBackoff(100*time.Millisecond, 5*time.Second)
	for r.ctx.Err() == nil {
		if err := h.c.EnsureHooksGroup(r.ctx, r.p); err != nil {
			log.Warn("create consumer group", "err", err)
			bo.Sleep(r.ctx)
			continue
		}
		break
	}
	pt := &partition{h: h, r: r, rooms: map[string][]item{}, inHand: map[string]bool{}, space: make(chan struct{}, 1)}
	defer pt.wg.Wait()
	// One consumer name per partition: the lease lets one process read it
	// at a time, and the next holder's first reads (from "0") return what
	// the last one left pending, in order, without claiming.
	read := &streams.HooksRead{Consumer: "p" + strconv.Itoa(r.p), FeedID: "0", RedoID: "0", Block: time.Second}
	for r.ctx.Err() == nil {
		free := h.cfg.MaxQueued - pt.count()
		if free <= 0 {
			select {
			case <-pt.space:
			case <-r.ctx.Done():
			}
			continue
		}
		read.Count = min(h.cfg.BatchSize, int64(free))
		pt.mu.Lock()
		if pt.rescan {
			read.FeedID, read.RedoID, pt.rescan = "0", "0", false
		}
		pt.mu.Unlock()
		if err := h.c.ReadHooks(r.ctx, r.p, read); err != nil {
			if r.ctx.Err() == nil {
				log.Warn("read the feed", "err", err)
				bo.Sleep(r.ctx)
			}
			continue
		}
		bo.Reset()
		read.FeedID = next(read.FeedID, read.Feed)
		read.RedoID = next(read.RedoID, read.Redo)
		var skip, skipRedo []string
		for _, m := range read.Feed {
			if !pt.take(m, false) {
				skip = append(skip, m.ID)
			}
		}
		for _, m := range read.Redo {
			if !pt.take(m, true) {
				skipRedo = append(skipRedo, m.ID)
			}
		}
		pt.skip(false, skip)
		pt.skip(true, skipRedo)
	}
}

// next is where a read of a stream goes on from: after the last pending
// entry returned, or new entries (">") once none is left pending.
func next(cur string, got []redis.XMessage) string {
	if cur == ">" || len(got) == 0 {
		return ">"
	}
	return got[len(got)-1].ID
}

func (pt *partition) count() int {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	return pt.queued
}

// take queues m for delivery; false when it is not to be delivered (its
// type is filtered out, or it was trimmed away while pending).
func (pt *partition) take(m redis.XMessage, redo bool) bool {
	if len(m.Values) == 0 {
		return false
	}
	key := handKey(m.ID, redo)
	pt.mu.Lock()
	held := pt.inHand[key]
	pt.mu.Unlock()
	if held {
		return true // read again from the pending entries: queued already
	}
	var ev *streams.FeedEvent
	var err error
	if redo {
		ev, err = streams.RedoEvent(pt.r.p, m)
	} else {
		ev, err = streams.DecodeFeedEvent(pt.r.p, m.ID, m.Values)
	}
	if err != nil {
		// Not an event: nothing to deliver, kept among the dead letters.
		pt.deadLetter(item{msg: m, redo: redo}, err, 0)
		return true
	}
	if !pt.h.filter.wants(ev.Type) {
		return false
	}
	pt.mu.Lock()
	q, busy := pt.rooms[ev.RoomID]
	pt.rooms[ev.RoomID] = append(q, item{msg: m, redo: redo, ev: ev})
	pt.queued++
	pt.inHand[key] = true
	pt.mu.Unlock()
	if !busy {
		pt.wg.Add(1)
		go func() { defer pt.wg.Done(); pt.drain(ev.RoomID) }()
	}
	return true
}

// skip acknowledges entries that are not delivered.
func (pt *partition) skip(redo bool, ids []string) {
	if len(ids) == 0 {
		return
	}
	pt.h.m.skipped.Add(float64(len(ids)))
	if err := pt.h.c.AckHooks(pt.r.ctx, pt.r.p, redo, ids...); err != nil {
		// Left pending: skipped again after the next read of the
		// pending entries.
		pt.h.log.Debug("acknowledge skipped events", "partition", pt.r.p, "err", err)
		pt.again()
	}
}

// drain delivers room's queued events in order until none is left, or
// the partition stops (what is left stays pending for its next holder).
func (pt *partition) drain(room string) {
	for {
		pt.mu.Lock()
		q := pt.rooms[room]
		if len(q) == 0 {
			delete(pt.rooms, room)
			pt.mu.Unlock()
			return
		}
		it := q[0]
		pt.mu.Unlock()
		if !pt.deliver(it) {
			// The partition stopped: what is left stays pending.
			return
		}
		pt.mu.Lock()
		pt.rooms[room] = pt.rooms[room][1:]
		pt.queued--
		delete(pt.inHand, handKey(it.msg.ID, it.redo))
		pt.mu.Unlock()
		select {
		case pt.space <- struct{}{}:
		default:
		}
	}
}

// handKey names an entry in partition.inHand.
func handKey(id string, redo bool) string {
	if redo {
		return "r" + id
	}
	return id
}

// deliver posts it until the webhook URL accepts it or it has failed
// ROOMSTREAM_WEBHOOK_MAX_ATTEMPTS times (then it goes to the dead
// letters); each failure waits a backoff that doubles. False when the
// partition stopped before it was accepted: the event stays pending.
func (pt *partition) deliver(it item) bool {
	h, r := pt.h, pt.r
	bo := streams.NewBackoff(h.cfg.Backoff, h.cfg.BackoffMax)
	b := body(it.ev)
	for attempt := 1; ; attempt++ {
		// Only while the lease is surely held; a renewal late by a
		// moment is waited for (a lost lease stops the partition).
		for !r.valid(h.now()) {
			if !streams.SleepCtx(r.ctx, 20*time.Millisecond) {
				return false
			}
		}
		select {
		case h.slots <- struct{}{}:
		case <-r.ctx.Done():
			return false
		}
		// A partition that stops (released to another process, or a
		// shutdown) lets the delivery in flight finish: cut short, it
		// would be delivered again by the next holder. The timeout
		// bounds it.
		err := h.post(context.WithoutCancel(r.ctx), it.ev.EventID(), b)
		<-h.slots
		if err == nil {
			h.m.delivered.WithLabelValues(it.ev.Type).Inc()
			pt.ack(it)
			return true
		}
		if r.ctx.Err() != nil {
			return false
		}
		if attempt >= h.cfg.MaxAttempts {
			pt.deadLetter(it, err, attempt)
			return true
		}
		h.m.retried.Inc()
		h.log.Debug("delivery failed; retrying", "partition", r.p, "event", it.ev.EventID(), "type", it.ev.Type, "attempt", attempt, "err", err)
		if !bo.Sleep(r.ctx) {
			return false
		}
	}
}

// post makes one delivery of body, event id, signed at this moment.
func (h *Hooks) post(ctx context.Context, id string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "roomstream-hooks")
	if err := h.sign.sign(req.Header, id, h.now(), body); err != nil {
		return err
	}
	start := time.Now()
	res, err := h.http.Do(req)
	h.m.seconds.Observe(time.Since(start).Seconds())
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	_ = res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return fmt.Errorf("HTTP %d", res.StatusCode)
	}
	return nil
}

// ack acknowledges a delivered event, retrying a while when Redis is
// away; if it never goes through, the event stays pending and is
// delivered again (at least once) after the next read of the pending
// entries.
func (pt *partition) ack(it item) {
	bo := streams.NewBackoff(50*time.Millisecond, time.Second)
	for range 5 {
		if err := pt.h.c.AckHooks(context.WithoutCancel(pt.r.ctx), pt.r.p, it.redo, it.msg.ID); err == nil {
			return
		} else if !bo.Sleep(pt.r.ctx) {
			break
		}
	}
	pt.again()
}

// again has the next read start over from the pending entries.
func (pt *partition) again() {
	pt.mu.Lock()
	pt.rescan = true
	pt.mu.Unlock()
}

// deadLetter moves an event that could not be delivered to the webhook
// dead letters (roomstream deadletters list -webhooks).
func (pt *partition) deadLetter(it item, cause error, attempts int) {
	h, r := pt.h, pt.r
	if err := h.c.WebhookDeadLetter(context.WithoutCancel(r.ctx), r.p, it.msg, it.redo, cause, int64(attempts), h.now()); err != nil {
		// Left pending: tried again after the next read of the pending
		// entries.
		h.log.Warn("move an event to the webhook dead letters", "partition", r.p, "id", it.msg.ID, "err", err)
		pt.again()
		return
	}
	h.m.deadLetters.Inc()
	h.log.Warn("event moved to the webhook dead letters", "partition", r.p, "id", it.msg.ID, "attempts", attempts, "err", cause)
}
