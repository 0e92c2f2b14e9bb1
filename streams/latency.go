package streams

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Latency is the histogram roomstream_event_latency_seconds{hop}: how
// long after its connector accepted an event (Envelope.Accepted) the event
// reached each hop. Workers observe queued (a worker read it) and applied
// (its effects are written), connectors delivered (a frame of it was
// handed to a member's socket, once per member). Connectors and workers
// share this one definition: `roomstream dev` runs both with one
// registry.
//
// The accept time is the connector's clock, the hops are read on the
// worker's or the connector's: on several machines the figures include
// the difference of their clocks, and a negative one counts as zero.
type Latency struct {
	Queued, Applied, Delivered Hop
}

// Hop observes the latency of one hop.
type Hop struct{ o prometheus.Observer }

// Since records that an event accepted at accepted reached the hop at now.
func (h Hop) Since(accepted, now time.Time) { h.SinceN(accepted, now, 1) }

// SinceN records n arrivals at the hop at now of an event accepted at
// accepted (a frame handed to n sockets).
func (h Hop) SinceN(accepted, now time.Time, n int) {
	if h.o == nil || accepted.IsZero() {
		return
	}
	s := max(now.Sub(accepted), 0).Seconds()
	for range n {
		h.o.Observe(s)
	}
}

// LatencyBuckets are the histogram's upper bounds, 100 µs to 10 s.
var LatencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// NewLatency returns the histogram, registered with reg (nil: observed,
// not exported). A registry that has it already (dev: connector and
// worker in one process) shares it.
func NewLatency(reg prometheus.Registerer) *Latency {
	var h prometheus.ObserverVec = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "roomstream_event_latency_seconds",
		Help:    "Time from a connector accepting an event to each hop: queued (a worker read it), applied (its effects written), delivered (a frame of it handed to a member's socket, once per member). Across machines it includes their clock difference; negative counts as 0.",
		Buckets: LatencyBuckets,
	}, []string{"hop"})
	if reg != nil {
		if err := reg.Register(h); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				panic(err) // a conflicting definition: a programming error
			}
			h = are.ExistingCollector.(prometheus.ObserverVec)
		}
	}
	return &Latency{
		Queued:    Hop{h.WithLabelValues("queued")},
		Applied:   Hop{h.WithLabelValues("applied")},
		Delivered: Hop{h.WithLabelValues("delivered")},
	}
}
