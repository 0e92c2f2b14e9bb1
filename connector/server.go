package connector

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomstream/roomstream/connector/auth"
	"github.com/roomstream/roomstream/connector/netguard"
	"github.com/roomstream/roomstream/streams"
)

// Options are optional settings of New; nil means defaults.
type Options struct {
	// Registerer receives the connector's metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Now is the clock of the times the connector records (sessions,
	// sockets, disconnects) and of its caches (nil: time.Now). Waits and
	// timeouts run on real time.
	Now func() time.Time
	// Guard counts the connections of the listener the connector is
	// served on (HTTPServer) and names clients; nil: NewGuard(cfg), which
	// then counts nothing unless the listener is wrapped with it too.
	Guard *netguard.Guard
}

// Server is one connector: it accepts Socket.IO clients at /socket.io/
// and moves their events to and from Redis Streams.
type Server struct {
	cfg      Config
	c        *streams.Client
	log      *slog.Logger
	id       string
	now      func() time.Time
	verifier *auth.Verifier
	access   *roomAccess // ROOM_ACCESS=proxy's backend (nil otherwise)
	// keysErr is why the configured keys could not be loaded (Run
	// returns it); stopKeys ends the JWKS refresh.
	keysErr  error
	stopKeys context.CancelFunc
	m        *metrics

	mu      sync.RWMutex
	sockets map[string]*socket // by Socket.IO id, once CONNECTed
	held    map[string]*held   // dropped sockets awaiting recovery
	// settling are the sockets whose connection ended and whose fate
	// (held or closed) is being written; closed when it is.
	settling map[string]chan struct{}
	polls    map[string]*socket // HTTP long-polling sessions, by Engine.IO id
	fwd      forwarder          // passes requests of other connectors' polling sessions on
	// recoveries are the recoveries waiting for their rooms to confirm the
	// socket's move here.
	recoveries map[string]*recovery

	// members: which local sockets are in which room (outbound reader
	// only, holding mu for reading).
	members members

	// lastSeen is the id of the last outbound entry read (the offset of a
	// socket that has received nothing yet).
	lastSeen atomic.Pointer[string]

	// appends hands the sockets' inbound events to the append loops.
	appends appendQueue

	// backlogged marks the partitions whose workers are too far behind
	// (watchBacklog).
	backlogMu  sync.RWMutex
	backlogged []bool

	// limits counts sessions and handshakes per client address; guard
	// names clients and counts their connections.
	limits limits
	guard  *netguard.Guard

	ready    atomic.Bool
	draining atomic.Bool
	conns    sync.WaitGroup // one per WebSocket connection or polling session
	loops    sync.WaitGroup
	done     chan struct{}
}

// New returns a connector. Run starts its loops; Handler serves clients.
func New(cfg Config, c *streams.Client, log *slog.Logger, opts *Options) *Server {
	if opts == nil {
		opts = &Options{}
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	id := cfg.ConnectorID
	if id == "" {
		id = "c-" + newID()[:12]
	}
	s := &Server{
		cfg: cfg, c: c, id: id, now: now,
		log:        log.With("connector", id),
		m:          newMetrics(opts.Registerer),
		sockets:    map[string]*socket{},
		held:       map[string]*held{},
		settling:   map[string]chan struct{}{},
		polls:      map[string]*socket{},
		recoveries: map[string]*recovery{},
		members:    members{},
		appends:    appendQueue{wake: make(chan struct{}, 1)},
		done:       make(chan struct{}),
		guard:      opts.Guard,
	}
	if s.guard == nil {
		s.guard = NewGuard(cfg)
	}
	s.limits.connect = netguard.NewLimiter(cfg.ConnectRate, int(2*cfg.ConnectRate))
	s.m.registerGuard(opts.Registerer, s.guard)
	s.m.registerReady(opts.Registerer, s.Ready)
	zero := "0-0"
	s.lastSeen.Store(&zero)
	var keys context.Context
	keys, s.stopKeys = context.WithCancel(context.Background())
	s.access = newRoomAccess(cfg)
	s.verifier, s.keysErr = auth.NewVerifierFromConfig(keys, &cfg.AuthConfig, s.log)
	if s.keysErr != nil {
		s.verifier = auth.NewRefusingVerifier()
	}
	return s
}

// ID returns the connector id (also the name of its outbound stream).
func (s *Server) ID() string { return s.id }

// Ready reports whether the connector reached Redis and runs its loops.
func (s *Server) Ready() bool { return s.ready.Load() && !s.draining.Load() }

// Run registers the connector, starts its heartbeat and outbound reader,
// and blocks until ctx ends; then it drains: new connections are refused,
// every socket gets its queued packets and a reconnectable close (1012
// "service restart"), and in-flight inbound events are finished. Sockets
// stay recoverable on other connectors; those that do not come back are
// removed from their rooms by a worker once this connector's heartbeat
// expires.
func (s *Server) Run(ctx context.Context) error {
	defer close(s.done)
	defer s.stopKeys()
	if s.keysErr != nil {
		return s.keysErr
	}
	if err := s.c.EnsureMeta(ctx); err != nil {
		return err
	}
	if _, err := s.c.Heartbeat(ctx, s.id, s.cfg.HeartbeatTTL); err != nil {
		return err
	}
	s.advertise(ctx)
	s.c.FollowFormat(ctx, s.log)
	start, err := s.outboundStart(ctx)
	if err != nil {
		return err
	}
	loops, stop := context.WithCancel(context.Background())
	s.loops.Add(3 + appenders)
	go func() { defer s.loops.Done(); s.heartbeat(loops) }()
	go func() { defer s.loops.Done(); s.readOutbound(loops, start) }()
	go func() { defer s.loops.Done(); s.watchBacklog(loops) }()
	for range appenders {
		go func() { defer s.loops.Done(); s.appendLoop(loops) }()
	}
	s.ready.Store(true)
	s.log.Info("connector started", "partitions", s.c.Partitions())
	<-ctx.Done()
	s.drain()
	stop()
	s.loops.Wait()
	return nil
}

// drain closes every connection so its client reconnects elsewhere. New
// events are refused (unavailable: send again after reconnecting); the
// acknowledgements of accepted ones are awaited first (up to half the
// drain timeout), since a recovered connection gets missed events back
// but not acknowledgements.
func (s *Server) drain() {
	s.draining.Store(true)
	waitAcks := time.Now().Add(s.cfg.DrainTimeout / 2)
	for time.Now().Before(waitAcks) && s.inFlightAcks() > 0 {
		time.Sleep(20 * time.Millisecond)
	}
	if n := s.inFlightAcks(); n > 0 {
		s.log.Warn("draining with acknowledgements still in flight", "acks", n)
	}
	s.mu.RLock()
	n := len(s.sockets)
	for _, so := range s.sockets {
		so.shutdown()
	}
	for _, so := range s.polls {
		so.shutdown() // polling sessions not connected yet too
	}
	s.mu.RUnlock()
	s.log.Info("draining", "sockets", n)
	waited := make(chan struct{})
	go func() { s.conns.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(s.cfg.DrainTimeout):
		s.log.Warn("drain timeout: closing remaining connections")
		s.mu.RLock()
		for _, so := range s.sockets {
			so.abort()
		}
		s.mu.RUnlock()
	}
	s.mu.Lock()
	for _, h := range s.held {
		h.timer.Stop()
	}
	s.mu.Unlock()
}

func (s *Server) inFlightAcks() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var n int64
	for _, so := range s.sockets {
		n += max(so.pendingAcks.Load(), 0)
	}
	return n
}

// evictAll closes every connection without touching rooms (a worker has
// already removed the sockets), so that clients reconnect with fresh
// sessions.
func (s *Server) evictAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, so := range s.sockets {
		so.superseded.Store(true)
		so.end(causeServer, websocket.StatusServiceRestart, "connector was cut off from Redis; reconnect")
		s.dropSocket(so)
	}
	for sid, h := range s.held {
		h.timer.Stop()
		delete(s.held, sid)
	}
}

// Done is closed when Run has returned.
func (s *Server) Done() <-chan struct{} { return s.done }

// Handler serves /socket.io/ (and only that; health and metrics are served
// by Health and the process).
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveEngine) }

// Healthz answers 200 while the process runs.
func Healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// Readyz answers 200 only when ready() holds.
func Readyz(ready func() bool) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	}
}

func (s *Server) socket(sid string) *socket {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.sockets[sid]
}

// newID returns 128 random bits, base64url.
func newID() string { return streams.RandomID(16) }

// newOrigin names a socket's incarnation: 72 random bits, 12 characters.
func newOrigin() string { return streams.RandomID(9) }

// mustJSON encodes a payload (streams.MustJSON: the one definition, shared
// with the workers).
var mustJSON = streams.MustJSON

func writeJSONError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{code, msg})
}
