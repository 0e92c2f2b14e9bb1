package hooks

import "github.com/prometheus/client_golang/prometheus"

// metrics of a hooks process.
type metrics struct {
	delivered    *prometheus.CounterVec
	retried      prometheus.Counter
	deadLetters  prometheus.Counter
	skipped      prometheus.Counter
	lag          *prometheus.GaugeVec
	owned        prometheus.Gauge
	leaseChanges *prometheus.CounterVec
	seconds      prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomstream_hooks_delivered_total",
			Help: "Feed events delivered to the webhook URL (a 2xx answer), by event type.",
		}, []string{"type"}),
		retried: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "roomstream_hooks_retries_total",
			Help: "Failed deliveries (non-2xx answer, timeout, connection error) that were retried.",
		}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "roomstream_hooks_dead_letters_total",
			Help: "Events moved to the webhook dead letters after ROOMSTREAM_WEBHOOK_MAX_ATTEMPTS failed deliveries.",
		}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "roomstream_hooks_skipped_total",
			Help: "Feed events not delivered: their type is not in ROOMSTREAM_WEBHOOK_EVENTS, or they were trimmed away before delivery.",
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "roomstream_hooks_lag",
			Help: "Feed events not delivered yet (read and pending, or not read), per partition this process holds.",
		}, []string{"partition"}),
		owned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "roomstream_hooks_partitions_owned",
			Help: "Feed partitions whose lease this hooks process holds.",
		}),
		leaseChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomstream_hooks_lease_changes_total",
			Help: "Feed partition leases acquired, released or lost by this hooks process.",
		}, []string{"change"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "roomstream_hooks_delivery_seconds",
			Help:    "Time of one delivery attempt, request to answer.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
	}
	if reg != nil {
		reg.MustRegister(m.delivered, m.retried, m.deadLetters, m.skipped, m.lag, m.owned, m.leaseChanges, m.seconds)
	}
	return m
}
