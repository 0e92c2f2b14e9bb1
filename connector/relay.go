package connector

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"time"

	"github.com/roomstream/roomstream/connector/protocol"
)

// The forwarding client (forward.go): how a request of another
// connector's polling session, or a WebSocket upgrade of one, travels to
// that connector and back. The client's side was admitted and counted
// here, on the connector it reached (the first hop); what is bounded here
// is the hop itself: connections per peer, a peer that does not answer,
// and each byte copied either way.

// errPeerSilent ends a forwarded request whose peer did not answer in
// time.
var errPeerSilent = errors.New("connector: the connector holding the session did not answer in time")

// peerConns bounds the connections to one peer that forwarded requests
// use at once; MAX_CONNS_PER_IP, when lower, so that the peer, which
// counts them for this connector's address unless it trusts it as a
// proxy, never refuses them.
const peerConns = 1024

type ctxKeyForward struct{}

// forwardReq is what the proxy's hooks need of one forwarded request.
type forwardReq struct {
	peer     string      // host:port of the connector holding the session
	answered *time.Timer // cancels the request unless the peer answers first
}

// answerTimeout bounds the wait for a peer's answer: a held poll is
// answered within pingInterval; half the write timeout is left of the
// client's own deadline (holdDeadlines) to tell it the peer is silent.
func (s *Server) answerTimeout() time.Duration { return s.cfg.PingInterval + s.writeTimeout()/2 }

// relayIdle bounds the wait for the next byte of a forwarded connection,
// either way: a live Engine.IO connection carries a ping one way at
// least every pingInterval and its pong the other way within
// pingTimeout, and a held poll is answered within pingInterval.
func (s *Server) relayIdle() time.Duration {
	return s.cfg.PingInterval + s.cfg.PingTimeout + s.writeTimeout()
}

// forwardProxy builds the reverse proxy of forwarded requests.
func (s *Server) forwardProxy() *httputil.ReverseProxy {
	dialer := &net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}
	conns := peerConns
	if s.cfg.MaxConnsPerIP > 0 {
		conns = min(conns, s.cfg.MaxConnsPerIP)
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = pr.In.Context().Value(ctxKeyForward{}).(*forwardReq).peer
			pr.Out.Host = pr.In.Host // the origin check compares with the Host the client used
			pr.Out.Header.Set(forwardHeader, s.id)
			pr.SetXForwarded()
			// The client as this connector's limits know it (through
			// trusted proxies), not what the client said: a peer that
			// trusts this connector counts it by that address.
			pr.Out.Header.Set("X-Forwarded-For", s.guard.Trust().ClientAddr(pr.In).String())
		},
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := dialer.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return &deadlineConn{Conn: c, idle: s.relayIdle(), write: s.writeTimeout()}, nil
			},
			MaxConnsPerHost:     conns,
			MaxIdleConnsPerHost: min(256, conns),
			// Shorter than relayIdle, so that the transport closes an
			// idle connection before its read deadline does.
			IdleConnTimeout: s.relayIdle() / 2,
		},
		ModifyResponse: func(res *http.Response) error {
			res.Request.Context().Value(ctxKeyForward{}).(*forwardReq).answered.Stop()
			s.m.forwarded.WithLabelValues("ok").Inc()
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.corsHeaders(w, r)
			if errors.Is(context.Cause(r.Context()), errPeerSilent) {
				s.m.forwarded.WithLabelValues("timeout").Inc()
				s.log.Warn("forward polling request: no answer in time", "peer", r.Context().Value(ctxKeyForward{}).(*forwardReq).peer)
				writeJSONError(w, http.StatusBadGateway, protocol.ErrCodeBadRequest, "Server holding the session did not answer, retry")
				return
			}
			s.m.forwarded.WithLabelValues("gone").Inc()
			s.log.Debug("forward polling request", "err", err)
			writeJSONError(w, http.StatusBadRequest, protocol.ErrCodeUnknownSID, protocol.ErrorMessages[protocol.ErrCodeUnknownSID])
		},
	}
}

// relayWriter is the ResponseWriter the proxy answers a forwarded request
// on. When the peer switches to WebSocket, the client's connection is
// taken from net/http, which clears its deadlines; the relay copies with
// deadlines of its own (deadlineConn).
type relayWriter struct {
	http.ResponseWriter
	s *Server
}

func (w *relayWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *relayWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	return &deadlineConn{Conn: c, idle: w.s.relayIdle(), write: w.s.writeTimeout()}, brw, nil
}

// deadlineConn gives each read idle and each write write to complete: a
// relay, or a pooled connection to a peer, whose other end stalls ends
// instead of holding both connections.
type deadlineConn struct {
	net.Conn
	idle, write time.Duration
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	return c.Conn.Read(p)
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.write))
	return c.Conn.Write(p)
}
