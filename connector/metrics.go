package connector

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomstream/roomstream/connector/netguard"
	"github.com/roomstream/roomstream/streams"
)

// metrics of a connector process.
type metrics struct {
	connections  prometheus.Gauge
	eventsIn     *prometheus.CounterVec
	eventsOut    *prometheus.CounterVec
	authFailures *prometheus.CounterVec
	rateLimited  prometheus.Counter
	slowDropped  prometheus.Counter
	duplicates   prometheus.Counter
	// appendRetries counts appends tried again (Redis unreachable,
	// loading or failing over).
	appendRetries prometheus.Counter
	recoveries    *prometheus.CounterVec
	closes        *prometheus.CounterVec
	panics        prometheus.Counter
	// limited counts connections and joins refused by a limit, by limit.
	limited *prometheus.CounterVec
	// backlogged is the number of partitions whose backlog is past
	// MAX_BACKLOG; backlogRefused the events refused for it.
	backlogged     prometheus.Gauge
	backlogRefused prometheus.Counter
	// upgrades counts polling sessions that moved to a WebSocket;
	// forwarded the polling requests (and upgrades) passed on to the
	// connector holding their session.
	upgrades  prometheus.Counter
	forwarded *prometheus.CounterVec
	// access counts the room access decisions (ROOM_ACCESS claims or
	// proxy), by result.
	access *prometheus.CounterVec
	// latency: the delivered hop of events (the workers observe queued
	// and applied).
	latency *streams.Latency
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "roomstream_connector_connections",
			Help: "Open client connections (WebSocket and HTTP long-polling sessions).",
		}),
		eventsIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomstream_connector_events_in_total",
			Help: "Client events received, by event and result (accepted = appended to a stream, or the refusal code).",
		}, []string{"event", "result"}),
		eventsOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomstream_connector_events_out_total",
			Help: "Packets queued to sockets, by event (ack for acknowledgements).",
		}, []string{"event"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomstream_connector_auth_failures_total",
			Help: "Failed authentications, by code.",
		}, []string{"code"}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "roomstream_connector_rate_limited_total",
			Help: "Events refused because their socket exceeded its rate limit.",
		}),
		slowDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "roomstream_connector_slow_sockets_dropped_total",
			Help: "Sockets disconnected because their send queue overflowed.",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "roomstream_connector_duplicates_dropped_total",
			Help: "Outbound entries dropped because an earlier copy was delivered (redelivery after a worker crash).",
		}),
		appendRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "roomstream_connector_append_retries_total",
			Help: "Inbound appends tried again because Redis was unreachable, loading or failing over.",
		}),
		recoveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomstream_connector_recoveries_total",
			Help: "Connection state recovery attempts, by result.",
		}, []string{"result"}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomstream_connector_disconnects_total",
			Help: "Closed connections, by cause.",
		}, []string{"cause"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "roomstream_connector_panics_total",
			Help: "Panics while handling a packet (the socket was closed, the process went on).",
		}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomstream_connector_limited_total",
			Help: "Handshakes, CONNECTs and joins refused by a limit, by limit (conns, connect_rate, conns_per_user, rooms_per_user, room_create_rate); connections past MAX_CONNS_PER_IP are roomstream_connector_connections_refused_total.",
		}, []string{"limit"}),
		backlogged: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "roomstream_connector_backlogged_partitions",
			Help: "Partitions whose inbound backlog is past ROOMSTREAM_MAX_BACKLOG: their new events are refused with 'unavailable'.",
		}),
		backlogRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "roomstream_connector_backlog_refused_total",
			Help: "Events refused with 'unavailable' because the workers were too far behind.",
		}),
		upgrades: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "roomstream_connector_polling_upgrades_total",
			Help: "HTTP long-polling sessions upgraded to a WebSocket.",
		}),
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomstream_connector_polling_forwarded_total",
			Help: "Polling requests of sessions held by another connector, passed on to it, by result (ok, gone).",
		}, []string{"result"}),
		access: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomstream_connector_room_access_total",
			Help: "Room access decisions where ROOMSTREAM_ROOM_ACCESS is claims or proxy, by result (allowed, forbidden, unavailable).",
		}, []string{"result"}),
	}
	m.latency = streams.NewLatency(reg)
	if reg != nil {
		reg.MustRegister(m.connections, m.eventsIn, m.eventsOut, m.authFailures, m.rateLimited,
			m.slowDropped, m.duplicates, m.appendRetries, m.recoveries, m.closes, m.panics,
			m.limited, m.backlogged, m.backlogRefused, m.upgrades, m.forwarded, m.access)
	}
	return m
}

// registerGuard exports the connections the guard refused for their
// address (it may be shared with the API's listener, and exist before the
// connector does, so it keeps the count itself).
func (m *metrics) registerGuard(reg prometheus.Registerer, g *netguard.Guard) {
	if reg == nil {
		return
	}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "roomstream_connector_connections_refused_total",
		Help: "HTTP connections and proxied requests refused (429) because their client address holds ROOMSTREAM_MAX_CONNS_PER_IP connections already.",
	}, func() float64 { return float64(g.Refused()) }))
}

// registerReady exports whether the connector is ready (reaches Redis,
// runs its loops, is not draining), for an alert.
func (m *metrics) registerReady(reg prometheus.Registerer, ready func() bool) {
	if reg == nil {
		return
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "roomstream_connector_ready",
		Help: "1 while the connector reaches Redis, runs its loops and is not draining (its /readyz), else 0.",
	}, func() float64 {
		if ready() {
			return 1
		}
		return 0
	}))
}
