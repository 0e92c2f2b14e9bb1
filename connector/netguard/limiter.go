package netguard

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter is a token bucket per key (an address key, see Key): the
// handshakes an address may open, the failed API authentications it may
// make. Buckets that are full again are forgotten, so the map holds only
// the keys that spent something lately.
type Limiter struct {
	r     rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	swept   time.Time
}

// NewLimiter allows each key perSecond on average and burst at once;
// perSecond <= 0 allows everything.
func NewLimiter(perSecond float64, burst int) *Limiter {
	r := rate.Limit(perSecond)
	if perSecond <= 0 {
		r = rate.Inf
	}
	return &Limiter{r: r, burst: max(1, burst), buckets: map[string]*rate.Limiter{}}
}

// Allow takes a token of key's bucket, or tells that none is left.
func (l *Limiter) Allow(key string) bool {
	if l.r == rate.Inf {
		return true
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	b := l.buckets[key]
	if b == nil {
		b = rate.NewLimiter(l.r, l.burst)
		l.buckets[key] = b
	}
	return b.AllowN(now, 1)
}

// Spent tells whether key's bucket is empty, without taking a token.
func (l *Limiter) Spent(key string) bool {
	if l.r == rate.Inf {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	return b != nil && b.TokensAt(time.Now()) < 1
}

// sweep forgets the buckets that are full again, once a minute.
func (l *Limiter) sweep(now time.Time) {
	if now.Sub(l.swept) < time.Minute {
		return
	}
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, k)
		}
	}
	l.swept = now
}
