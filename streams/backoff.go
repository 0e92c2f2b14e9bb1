package streams

import (
	"context"
	"time"
)

// Backoff is the delay between the tries of a retry loop: Min, doubling
// after every Sleep up to Max. The zero value is not usable; set both.
type Backoff struct {
	Min, Max time.Duration
	d        time.Duration
}

// NewBackoff returns a Backoff from min doubling to max.
func NewBackoff(min, max time.Duration) *Backoff { return &Backoff{Min: min, Max: max} }

// Next returns the delay to wait now and doubles the following one.
func (b *Backoff) Next() time.Duration {
	if b.d < b.Min {
		b.d = b.Min
	}
	d := b.d
	b.d = min(2*b.d, b.Max)
	return d
}

// Reset starts again from Min (after a success).
func (b *Backoff) Reset() { b.d = b.Min }

// Sleep waits for the next delay; false when ctx ended first.
func (b *Backoff) Sleep(ctx context.Context) bool { return SleepCtx(ctx, b.Next()) }

// SleepCtx waits for d; false when ctx ended first.
func SleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
