package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomstream/roomstream/connector/netguard"
	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
)

// Prefix is where the API is served.
const Prefix = "/api/v1/"

// OpenAPI is the OpenAPI 3 description of the API, served at
// /api/v1/openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte

// maxBody bounds a request body (the data of an event plus its envelope).
const maxBody = 1 << 20

// Route is one operation of the API.
type Route struct {
	Method, Path string // Path as in the OpenAPI description
	handle       func(h *Handler, w http.ResponseWriter, r *http.Request) error
}

// Routes lists every operation the API serves; a test holds it against
// the OpenAPI description.
var Routes = []Route{
	{"GET", "/api/v1/openapi.json", (*Handler).openAPI},
	{"GET", "/api/v1/rooms", (*Handler).listRooms},
	{"GET", "/api/v1/rooms/{roomId}", (*Handler).getRoom},
	{"POST", "/api/v1/rooms/{roomId}/events", (*Handler).publish},
	{"DELETE", "/api/v1/rooms/{roomId}/members/{userId}", (*Handler).removeMember},
	{"POST", "/api/v1/rooms/{roomId}/unlock", (*Handler).unlock},
	{"GET", "/api/v1/users/{userId}", (*Handler).getUser},
	{"POST", "/api/v1/users/{userId}/disconnect", (*Handler).disconnect},
}

// Handler serves the API; every request must carry
// "Authorization: Bearer <key>".
type Handler struct {
	svc      *Service
	key      [32]byte
	log      *slog.Logger
	mux      *http.ServeMux
	requests *prometheus.CounterVec
	opts     HandlerOptions
}

// Failed authentications one client address may make: a few per second
// after a burst, far too few to guess a key of 16 characters or more.
const (
	FailedAuthRate  = 2
	FailedAuthBurst = 10
)

// HandlerOptions are optional settings of NewHandler; nil means defaults.
type HandlerOptions struct {
	// ClientKey names the client address of a request, by which failed
	// authentications are limited (nil: its peer's, netguard.Key; a
	// connector passes its guard's, which knows its trusted proxies).
	ClientKey func(*http.Request) string
	// FailedAuths limits the failed authentications of each client
	// address (nil: FailedAuthRate per second, FailedAuthBurst at once).
	FailedAuths *netguard.Limiter
	// Deadline is the read and write deadline of an authorized request,
	// from the time its key is checked: its Redis work (Timeout) and the
	// network's share (0: the server's own deadlines).
	Deadline time.Duration
}

// NewHandler returns the API over svc, guarded by key (which must not be
// empty). reg, when not nil, receives its metrics.
func NewHandler(svc *Service, key string, log *slog.Logger, reg prometheus.Registerer, opts *HandlerOptions) *Handler {
	if opts == nil {
		opts = &HandlerOptions{}
	}
	o := *opts
	if o.ClientKey == nil {
		o.ClientKey = netguard.Trust{}.ClientKey
	}
	if o.FailedAuths == nil {
		o.FailedAuths = netguard.NewLimiter(FailedAuthRate, FailedAuthBurst)
	}
	h := &Handler{svc: svc, key: sha256.Sum256([]byte(key)), log: log, mux: http.NewServeMux(), opts: o,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomstream_api_requests_total",
			Help: "Server API requests, by route (method and path pattern; unauthorized, other) and status code.",
		}, []string{"route", "code"})}
	if reg != nil {
		reg.MustRegister(h.requests)
	}
	for _, rt := range Routes {
		handle, route := rt.handle, rt.Method+" "+rt.Path
		h.mux.HandleFunc(route, func(w http.ResponseWriter, r *http.Request) {
			sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
			if err := handle(h, sw, r); err != nil {
				h.fail(sw, r, err)
			}
			h.requests.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
		})
	}
	// Anything else under the prefix: a JSON 405 when the path is served
	// with other methods, else a JSON 404.
	h.mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, rt := range Routes {
			probe := r.Clone(r.Context())
			probe.Method = rt.Method
			if _, pattern := h.mux.Handler(probe); pattern != Prefix && !slices.Contains(allow, rt.Method) {
				allow = append(allow, rt.Method)
			}
		}
		if len(allow) > 0 {
			h.requests.WithLabelValues("other", "405").Inc()
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeJSON(w, http.StatusMethodNotAllowed, errorBody{schemas.Errorf(schemas.CodeNotFound, "%s is not served for %s (allowed: %s)",
				r.Method, r.URL.Path, strings.Join(allow, ", "))})
			return
		}
		h.requests.WithLabelValues("other", "404").Inc()
		h.fail(w, r, notFound("no such route: %s %s", r.Method, r.URL.Path))
	})
	return h
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// ServeHTTP checks the key, then routes. A request without the right key
// gets 401 and nothing else, whatever its path; one from an address that
// failed too often lately gets 429 before its key is looked at, so that
// the key cannot be guessed from one address.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	client := h.opts.ClientKey(r)
	if h.opts.FailedAuths.Spent(client) {
		h.requests.WithLabelValues("unauthorized", "429").Inc()
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusTooManyRequests, errorBody{schemas.NewError(schemas.CodeRateLimited, "too many failed authentications from this address: retry later")})
		return
	}
	if !h.authorized(r) {
		h.opts.FailedAuths.Allow(client)
		h.requests.WithLabelValues("unauthorized", "401").Inc()
		w.Header().Set("WWW-Authenticate", "Bearer")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if d := h.opts.Deadline; d > 0 {
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Now().Add(d))
		_ = rc.SetWriteDeadline(time.Now().Add(d))
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	ctx, cancel := context.WithTimeout(r.Context(), Timeout)
	defer cancel()
	h.mux.ServeHTTP(w, r.WithContext(ctx))
}

func (h *Handler) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return false
	}
	// Digests compared in constant time: neither the key nor its length
	// leaks through timing.
	got := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(got[:], h.key[:]) == 1
}

// errorBody is the JSON of every refusal.
type errorBody struct {
	Error *schemas.Error `json:"error"`
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *Error
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		writeJSON(w, ae.Status, errorBody{ae.Err})
	case errors.As(err, &mbe):
		e := schemas.Errorf(schemas.CodePayloadTooLarge, "the body must be at most %d bytes", mbe.Limit)
		e.Field = "body"
		writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{e})
	case errors.Is(err, context.Canceled):
		// The client went away.
	case streams.IsUnavailable(err):
		h.log.Warn("api: Redis unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, errorBody{schemas.NewError(schemas.CodeUnavailable, "")})
	default:
		h.log.Error("api", "method", r.Method, "path", r.URL.Path, "err", err)
		writeJSON(w, http.StatusInternalServerError, errorBody{schemas.NewError(schemas.CodeInternal, "")})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// decodeBody reads a JSON object body into v: 400 naming the field at
// fault, never a 500.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			return err
		case errors.Is(err, io.EOF):
			return badField("body", "is required: a JSON object")
		case errors.As(err, &te) && te.Field != "":
			return badField(te.Field, "must be a %s", jsonKind(te.Type.Kind().String()))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return badField(field, "is not a known field")
		}
		return badField("body", "must be a JSON object: %v", err)
	}
	if dec.More() {
		return badField("body", "must hold one JSON object")
	}
	return nil
}

func jsonKind(k string) string {
	switch k {
	case "bool":
		return "boolean"
	case "string":
		return "string"
	case "struct", "map":
		return "object"
	}
	return k
}

func (h *Handler) openAPI(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(OpenAPI)
	return nil
}

func (h *Handler) listRooms(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return badField("limit", "must be a number between 1 and %d", MaxPageLimit)
		}
		if n == 0 {
			return badField("limit", "must be between 1 and %d", MaxPageLimit)
		}
		limit = n
	}
	page, err := h.svc.Rooms(r.Context(), q.Get("cursor"), limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (h *Handler) getRoom(w http.ResponseWriter, r *http.Request) error {
	room, err := h.svc.Room(r.Context(), r.PathValue("roomId"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, room)
	return nil
}

func (h *Handler) publish(w http.ResponseWriter, r *http.Request) error {
	var req PublishRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	acc, err := h.svc.Publish(r.Context(), r.PathValue("roomId"), req, r.Header.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, acc)
	return nil
}

func (h *Handler) removeMember(w http.ResponseWriter, r *http.Request) error {
	acc, err := h.svc.RemoveMember(r.Context(), r.PathValue("roomId"), r.PathValue("userId"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, acc)
	return nil
}

func (h *Handler) unlock(w http.ResponseWriter, r *http.Request) error {
	acc, err := h.svc.Unlock(r.Context(), r.PathValue("roomId"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, acc)
	return nil
}

func (h *Handler) getUser(w http.ResponseWriter, r *http.Request) error {
	u, err := h.svc.User(r.Context(), r.PathValue("userId"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}

func (h *Handler) disconnect(w http.ResponseWriter, r *http.Request) error {
	var req DisconnectRequest
	if r.ContentLength != 0 {
		if err := decodeBody(r, &req); err != nil && !isEmptyBody(err) {
			return err
		}
	}
	out, err := h.svc.Disconnect(r.Context(), r.PathValue("userId"), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, out)
	return nil
}

// isEmptyBody: a disconnect may come without a body (no reason, tokens
// kept).
func isEmptyBody(err error) bool {
	var ae *Error
	return errors.As(err, &ae) && ae.Err.Field == "body" && strings.HasSuffix(ae.Err.Message, "is required: a JSON object")
}

// Timeout bounds the Redis work of one request.
const Timeout = 10 * time.Second
