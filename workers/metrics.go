package workers

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomstream/roomstream/streams"
)

// metrics of a worker process.
type metrics struct {
	applied      *prometheus.CounterVec
	applySeconds *prometheus.HistogramVec
	eventsOut    *prometheus.CounterVec
	claimed      prometheus.Counter
	deadLetters  prometheus.Counter
	retries      prometheus.Counter
	leaseChanges *prometheus.CounterVec
	owned        prometheus.Gauge
	pending      *prometheus.GaugeVec
	lag          *prometheus.GaugeVec
	reaped       prometheus.Counter
	// latency: the queued and applied hops of events (the connectors
	// observe delivered).
	latency *streams.Latency
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomstream_worker_events_applied_total",
			Help: "Inbound entries applied, by type and outcome (ok, noop, dup or a refusal code).",
		}, []string{"type", "status"}),
		applySeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "roomstream_worker_apply_seconds",
			Help:    "Time to apply one inbound entry, from read to outbound written.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"type"}),
		eventsOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomstream_worker_events_out_total",
			Help: "Events emitted to rooms, by event name.",
		}, []string{"event"}),
		claimed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "roomstream_worker_claimed_total",
			Help: "Pending entries claimed from earlier owners of a partition (XAUTOCLAIM).",
		}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "roomstream_worker_dead_letters_total",
			Help: "Entries moved to a dead-letter stream.",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "roomstream_worker_retries_total",
			Help: "Failed attempts to apply an entry that were retried.",
		}),
		leaseChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomstream_worker_lease_changes_total",
			Help: "Partition leases acquired, released or lost by this worker.",
		}, []string{"change"}),
		owned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "roomstream_worker_partitions_owned",
			Help: "Partitions whose lease this worker holds.",
		}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "roomstream_partition_pending",
			Help: "Entries delivered but not yet acknowledged, per partition (updated by the janitor).",
		}, []string{"partition"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "roomstream_partition_lag",
			Help: "Entries not yet delivered to any worker, per partition (updated by the janitor).",
		}, []string{"partition"}),
		reaped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "roomstream_worker_connectors_reaped_total",
			Help: "Dead connectors whose sockets were removed from their rooms.",
		}),
	}
	m.latency = streams.NewLatency(reg)
	if reg != nil {
		reg.MustRegister(m.applied, m.applySeconds, m.eventsOut, m.claimed, m.deadLetters, m.retries,
			m.leaseChanges, m.owned, m.pending, m.lag, m.reaped)
	}
	return m
}

// written observes the applied hop of entries whose effects were written
// at now.
func (m *metrics) written(es []*effects, now time.Time) {
	for _, e := range es {
		m.latency.Applied.Since(e.accepted, now)
	}
}

// registerState exports what an alert compares with: the deployment's
// partition count (the owned partitions of all workers should add up to
// it) and whether the worker is ready (reaches Redis, runs its loops).
func (m *metrics) registerState(reg prometheus.Registerer, partitions int, ready func() bool) {
	if reg == nil {
		return
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "roomstream_partitions",
		Help: "Inbound partitions of the deployment (ROOMSTREAM_PARTITIONS); the workers' roomstream_worker_partitions_owned add up to it when every partition has an owner.",
	}, func() float64 { return float64(partitions) }), prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "roomstream_worker_ready",
		Help: "1 while the worker reaches Redis and runs its loops (its /readyz), else 0.",
	}, func() float64 { return boolGauge(ready()) }))
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
