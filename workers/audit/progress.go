package audit

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// progress prints how far a long run got, once a second, on its writer
// (stderr in the CLI).
type progress struct {
	w     io.Writer
	label string
	total int64
	n     atomic.Int64
	start time.Time
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

func startProgress(w io.Writer, label string, total int64) *progress {
	p := &progress{w: w, label: label, total: total, start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	go p.loop()
	return p
}

func (p *progress) add(n int64) { p.n.Add(n) }

func (p *progress) loop() {
	defer close(p.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.print(false)
		}
	}
}

func (p *progress) print(final bool) {
	n := p.n.Load()
	el := time.Since(p.start)
	rate := float64(n) / max(el.Seconds(), 1e-3)
	switch {
	case final:
		fmt.Fprintf(p.w, "%s: %d entries in %s (%.0f entries/s)\n", p.label, n, el.Round(time.Millisecond), rate)
	case p.total > 0 && n <= p.total:
		eta := time.Duration(float64(p.total-n) / max(rate, 1) * float64(time.Second))
		fmt.Fprintf(p.w, "%s: %d of %d entries (%.1f%%), %.0f/s, about %s left\n", p.label, n, p.total,
			100*float64(n)/float64(p.total), rate, eta.Round(time.Second))
	default:
		fmt.Fprintf(p.w, "%s: %d entries, %.0f/s\n", p.label, n, rate)
	}
}

// finish stops the ticker and prints the final line; idempotent.
func (p *progress) finish() {
	p.once.Do(func() {
		close(p.stop)
		<-p.done
		p.print(true)
	})
}
