package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/roomstream/roomstream/connector/netguard"
	"github.com/roomstream/roomstream/infra/testredis"
	"github.com/roomstream/roomstream/schemas"
	"github.com/roomstream/roomstream/streams"
	"github.com/roomstream/roomstream/workers"
)

const key = "test-api-key-0123456789"

type fixture struct {
	t   *testing.T
	ctx context.Context
	rdb *redis.Client
	c   *streams.Client
	a   *workers.Applier
	srv *httptest.Server
	reg *prometheus.Registry
	n   int
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	rdb := testredis.Start(t, nil).Client()
	c := streams.New(rdb, streams.Config{Partitions: 4, RecoveryWindow: time.Minute, KeyPrefix: "t:", InboundRetention: time.Hour, InboundMaxLen: 1000})
	f := &fixture{t: t, ctx: context.Background(), rdb: rdb, c: c, a: workers.NewApplier(c, time.Second, time.Hour, nil)}
	f.reg = prometheus.NewRegistry()
	// Failed authentications unlimited: TestUnauthorized fails many;
	// TestFailedAuthLimited checks the limit.
	h := NewHandler(NewService(c, nil), key, slog.New(slog.NewTextHandler(io.Discard, nil)), f.reg,
		&HandlerOptions{FailedAuths: netguard.NewLimiter(0, 0)})
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

// apply applies a client event as a worker would.
func (f *fixture) apply(typ, room, user, socket, conn string, payload any) {
	f.t.Helper()
	f.n++
	env := &streams.Envelope{ID: strconv.Itoa(1000+f.n) + "-0", Type: typ, RoomID: room, UserID: user, UserName: strings.ToUpper(user[:1]) + user[1:],
		SocketID: socket, ConnectorID: conn, At: time.Date(2026, 1, 2, 3, 4, f.n, 0, time.UTC)}
	if payload != nil {
		env.Data, _ = json.Marshal(payload)
	}
	if _, err := f.a.Apply(f.ctx, 0, 1, env); err != nil {
		f.t.Fatal(err)
	}
}

// beat marks connectors alive (their heartbeat key).
func (f *fixture) beat(conns ...string) {
	for _, c := range conns {
		f.rdb.Set(f.ctx, f.c.Keys.Connector(c), "alive", time.Minute)
	}
}

// do sends a request with the key and returns status and body.
func (f *fixture) do(method, path, body string, hdr ...string) (int, string) {
	f.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, f.srv.URL+path, r)
	req.Header.Set("Authorization", "Bearer "+key)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// inbound returns the entries of room's partition stream.
func (f *fixture) inbound(room string) []*streams.Envelope {
	f.t.Helper()
	msgs, err := f.rdb.XRange(f.ctx, f.c.Keys.Inbound(streams.Partition(room, 4)), "-", "+").Result()
	if err != nil {
		f.t.Fatal(err)
	}
	var out []*streams.Envelope
	for _, m := range msgs {
		e, err := streams.DecodeEnvelope(m.ID, m.Values)
		if err != nil {
			f.t.Fatal(err)
		}
		if e.RoomID == room {
			out = append(out, e)
		}
	}
	return out
}

func TestUnauthorized(t *testing.T) {
	f := newFixture(t)
	for _, auth := range []string{"", "Bearer", "Bearer ", "Bearer wrong-key", "Basic " + key, "bearer " + key, "Bearer " + key + "x"} {
		for _, rt := range Routes {
			req, _ := http.NewRequest(rt.Method, f.srv.URL+strings.NewReplacer("{roomId}", "r1", "{userId}", "u1").Replace(rt.Path), nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 401 || len(b) != 0 {
				t.Errorf("%s %s with %q: %d %q, want 401 and no body", rt.Method, rt.Path, auth, res.StatusCode, b)
			}
		}
	}
	if status, _ := f.do("GET", "/api/v1/openapi.json", ""); status != 200 {
		t.Errorf("with the key: %d", status)
	}
	want := fmt.Sprintf(`
# HELP roomstream_api_requests_total Server API requests, by route (method and path pattern; unauthorized, other) and status code.
# TYPE roomstream_api_requests_total counter
roomstream_api_requests_total{code="200",route="GET /api/v1/openapi.json"} 1
roomstream_api_requests_total{code="401",route="unauthorized"} %d
`, 7*len(Routes))
	if err := testutil.GatherAndCompare(f.reg, strings.NewReader(want), "roomstream_api_requests_total"); err != nil {
		t.Error(err)
	}
}

// TestRoutesMatchOpenAPI holds the served routes against the committed
// OpenAPI description: it is a valid OpenAPI 3 document, it lists the same
// paths and methods, and every answer of every route (successes and
// refusals) is one it describes, status, headers and body schema.
func TestRoutesMatchOpenAPI(t *testing.T) {
	f := newFixture(t)
	_, body := f.do("GET", "/api/v1/openapi.json", "")
	if body != string(OpenAPI) {
		t.Fatal("/api/v1/openapi.json does not serve the committed description")
	}
	doc, err := openapi3.NewLoader().LoadFromData(OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(f.ctx); err != nil {
		t.Fatalf("the description is not valid OpenAPI 3: %v", err)
	}
	var inSpec, served []string
	for p, item := range doc.Paths.Map() {
		for m := range item.Operations() {
			inSpec = append(inSpec, m+" "+p)
		}
	}
	for _, rt := range Routes {
		served = append(served, rt.Method+" "+rt.Path)
	}
	sort.Strings(inSpec)
	sort.Strings(served)
	if diff := cmp.Diff(inSpec, served); diff != "" {
		t.Fatalf("routes (-openapi,+served):\n%s", diff)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}

	// A room with a locked lock and two members, so that each route can
	// answer success too.
	f.apply(schemas.EventJoinRoom, "r1", "alice", "sA", "c1", nil)
	f.apply(schemas.EventJoinRoom, "r1", "bob", "sB", "c1", nil)
	f.apply(schemas.EventLockRoom, "r1", "alice", "sA", "c1", map[string]string{"roomId": "r1"})
	f.apply(schemas.EventFileUploadStarted, "r1", "alice", "sA", "c1", map[string]any{"roomId": "r1", "fileId": "f1", "fileName": "a", "size": 1})
	f.rdb.SAdd(f.ctx, f.c.Keys.UserSockets("alice"), "sA")
	f.rdb.HSet(f.ctx, f.c.Keys.Socket("sA"), "connector", "c1", "state", "live", "connectedAt", "2026-01-02T03:04:05.000Z")
	f.beat("c1")

	cases := []struct{ method, path, body string }{
		{"GET", "/api/v1/openapi.json", ""},
		{"GET", "/api/v1/rooms", ""},
		{"GET", "/api/v1/rooms?limit=x", ""},
		{"GET", "/api/v1/rooms/r1", ""},
		{"GET", "/api/v1/rooms/nope", ""},
		{"GET", "/api/v1/rooms/bad%20id", ""},
		{"POST", "/api/v1/rooms/r1/events", `{"event":"app:x","data":{}}`},
		{"POST", "/api/v1/rooms/r1/events", `{"event":"file-added","data":{"file":{"id":"f1","name":"a","size":1}}}`},
		{"POST", "/api/v1/rooms/r1/events", `{"event":"bogus"}`},
		{"POST", "/api/v1/rooms/nope/events", `{"event":"app:x"}`},
		{"POST", "/api/v1/rooms/r1/events", `{"event":"app:x","data":"` + strings.Repeat("x", maxBody) + `"}`},
		{"DELETE", "/api/v1/rooms/r1/members/bob", ""},
		{"DELETE", "/api/v1/rooms/r1/members/carol", ""},
		{"DELETE", "/api/v1/rooms/r1/members/bad%20id", ""},
		{"POST", "/api/v1/rooms/r1/unlock", ""},
		{"POST", "/api/v1/rooms/nope/unlock", ""},
		{"POST", "/api/v1/rooms/bad%20id/unlock", ""},
		{"GET", "/api/v1/users/alice", ""},
		{"GET", "/api/v1/users/carol", ""},
		{"GET", "/api/v1/users/bad%20id", ""},
		{"POST", "/api/v1/users/alice/disconnect", `{"reason":"bye"}`},
		{"POST", "/api/v1/users/carol/disconnect", ""},
		{"POST", "/api/v1/users/alice/disconnect", `{"revokeTokens":"yes"}`},
	}
	succeeded := map[string]bool{}
	for _, tc := range cases {
		req, _ := http.NewRequest(tc.method, f.srv.URL+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Errorf("%s %s: not in the description: %v", tc.method, tc.path, err)
			continue
		}
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
			Status:                 res.StatusCode, Header: res.Header, Body: io.NopCloser(bytes.NewReader(b)),
			Options: &openapi3filter.Options{IncludeResponseStatus: true},
		}
		if err := openapi3filter.ValidateResponse(f.ctx, in); err != nil {
			t.Errorf("%s %s answered %d %.200s, which the description does not allow: %v", tc.method, tc.path, res.StatusCode, b, err)
		}
		if res.StatusCode >= 500 {
			t.Errorf("%s %s: %d for a request a client made (%s)", tc.method, tc.path, res.StatusCode, b)
		}
		if res.StatusCode < 300 {
			succeeded[route.Method+" "+route.Path] = true
		}
	}
	for _, rt := range Routes {
		if !succeeded[rt.Method+" "+rt.Path] {
			t.Errorf("%s %s: no case succeeded", rt.Method, rt.Path)
		}
	}
}

func TestBadInput(t *testing.T) {
	f := newFixture(t)
	f.apply(schemas.EventJoinRoom, "r1", "alice", "sA", "c1", nil)
	for _, tc := range []struct {
		method, path, body string
		status             int
		field              string
	}{
		{"POST", "/api/v1/rooms/r1/events", ``, 400, "body"},
		{"POST", "/api/v1/rooms/r1/events", `[1]`, 400, "body"},
		{"POST", "/api/v1/rooms/r1/events", `{"event":"app:x"} {}`, 400, "body"},
		{"POST", "/api/v1/rooms/r1/events", `{"event":1}`, 400, "event"},
		{"POST", "/api/v1/rooms/r1/events", `{"event":"app:x","extra":1}`, 400, "extra"},
		{"POST", "/api/v1/rooms/r1/events", `{}`, 400, "event"},
		{"POST", "/api/v1/rooms/r1/events", `{"event":"user-left"}`, 400, "event"},
		{"POST", "/api/v1/rooms/r1/events", `{"event":"app:"}`, 400, "event"},
		{"POST", "/api/v1/rooms/r1/events", `{"event":"app:a b"}`, 400, "event"},
		{"POST", "/api/v1/rooms/r1/events", `{"event":"app:x","data":"` + strings.Repeat("x", DefaultMaxData) + `"}`, 400, "data"},
		{"POST", "/api/v1/rooms/r1/events", `{"event":"file-added","data":{}}`, 400, "data.file"},
		{"POST", "/api/v1/rooms/r1/events", `{"event":"file-added","data":{"file":{"name":"a"}}}`, 400, "data.file.id"},
		{"POST", "/api/v1/rooms/r1/events", `{"event":"file-added","data":{"file":{"id":"f","size":1}}}`, 400, "data.file.name"},
		{"POST", "/api/v1/rooms/r1/events", `{"event":"file-added","data":{"file":{"id":"f","name":"a","size":-1}}}`, 400, "data.file.size"},
		{"POST", "/api/v1/rooms/r1/events", `{"event":"file-added","data":{"file":{"id":"f","name":"a","createdAt":"yesterday"}}}`, 400, "data.file.createdAt"},
		{"POST", "/api/v1/rooms/r1/events", `{"event":"file-added","data":{"file":{"id":"f","name":"a"},"roomId":"r2"}}`, 400, "data.roomId"},
		{"POST", "/api/v1/rooms/r1/events", `{"event":"file-added","data":{"file":{"id":"f","name":"a"},"color":"red"}}`, 400, "data"},
		{"POST", "/api/v1/rooms/r{1}/events", `{"event":"app:x"}`, 400, "roomId"},
		{"POST", "/api/v1/rooms/r2/events", `{"event":"app:x"}`, 404, ""},
		{"GET", "/api/v1/rooms?limit=0", ``, 400, "limit"},
		{"GET", "/api/v1/rooms?limit=5000", ``, 400, "limit"},
		{"GET", "/api/v1/rooms?cursor=zz", ``, 400, "cursor"},
		{"GET", "/api/v1/rooms?cursor=7-0", ``, 400, "cursor"},
		{"POST", "/api/v1/users/alice/disconnect", `{"reason":"a\u0000b"}`, 400, "reason"},
		{"POST", "/api/v1/users/alice/disconnect", `{"revokeTokens":1}`, 400, "revokeTokens"},
		{"POST", "/api/v1/rooms/r1/unlock", ``, 409, ""},
		{"DELETE", "/api/v1/rooms/r1/members/bob", ``, 404, ""},
		{"GET", "/api/v1/nothing", ``, 404, ""},
		{"PUT", "/api/v1/rooms/r1", ``, 405, ""},
	} {
		status, body := f.do(tc.method, tc.path, tc.body)
		var e errorBody
		_ = json.Unmarshal([]byte(body), &e)
		if status != tc.status || (tc.field != "" && (e.Error == nil || e.Error.Field != tc.field)) {
			t.Errorf("%s %s %.60s: %d %s, want %d with field %q", tc.method, tc.path, tc.body, status, body, tc.status, tc.field)
		}
	}
	status, _ := f.do("POST", "/api/v1/rooms/r1/events", `{"event":"app:x"}`, "Idempotency-Key", strings.Repeat("k", 300))
	if status != 400 {
		t.Errorf("a 300-byte Idempotency-Key: %d", status)
	}
	if n := len(f.inbound("r1")); n != 0 {
		t.Errorf("refused requests appended %d entries", n)
	}
}

func TestPublishAppendsToThePartition(t *testing.T) {
	f := newFixture(t)
	f.apply(schemas.EventJoinRoom, "r1", "alice", "sA", "c1", nil)
	status, body := f.do("POST", "/api/v1/rooms/r1/events", `{"event":"file-added","data":{"file":{"id":"f1","name":"plan.pdf","size":3,"uploadedBy":"alice"}}}`)
	if status != 202 {
		t.Fatalf("publish: %d %s", status, body)
	}
	var acc Accepted
	_ = json.Unmarshal([]byte(body), &acc)
	envs := f.inbound("r1")
	last := envs[len(envs)-1]
	if last.ID != acc.EntryID || last.Type != schemas.CmdPublish || last.Via != schemas.ViaAPI || last.Event != "file-added" || last.Target != "f1" {
		t.Fatalf("entry %+v for answer %s", last, body)
	}
	var p schemas.FileAddedPayload
	_ = json.Unmarshal(last.Data, &p)
	want := schemas.FileAddedPayload{RoomID: "r1", File: schemas.File{ID: "f1", Name: "plan.pdf", Size: 3, MimeType: "application/octet-stream", UploadedBy: "alice", UploadedByName: "alice"}}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("normalized data (-want,+got):\n%s", diff)
	}

	// The same Idempotency-Key: the first entry's id, nothing appended;
	// the key with another body: 409.
	pub := func(body string) (int, Accepted) {
		status, b := f.do("POST", "/api/v1/rooms/r1/events", body, "Idempotency-Key", "order-42")
		var acc Accepted
		_ = json.Unmarshal([]byte(b), &acc)
		return status, acc
	}
	s1, a1 := pub(`{"event":"app:paid","data":{"order":42}}`)
	s2, a2 := pub(`{"event":"app:paid","data":{"order":42}}`)
	if s1 != 202 || s2 != 202 || a1.EntryID == "" || a2.EntryID != a1.EntryID || a1.Repeated || !a2.Repeated {
		t.Errorf("retried publish: %d %+v then %d %+v", s1, a1, s2, a2)
	}
	if s3, _ := pub(`{"event":"app:paid","data":{"order":43}}`); s3 != 409 {
		t.Errorf("the key reused for another body: %d", s3)
	}
	envs = f.inbound("r1")
	if len(envs) != 2 {
		t.Fatalf("%d entries, want two publishes", len(envs))
	}
	e := envs[1]
	if e.SocketID == "" || e.Seq == 0 || e.Origin == "" {
		t.Errorf("an idempotent publish is not numbered for the workers' duplicate check: %+v", e)
	}
}

// applyInbound applies room's entries after the first done of them, as
// the workers would, and returns how many there were.
func (f *fixture) applyInbound(room string, done int) int {
	f.t.Helper()
	envs := f.inbound(room)
	for _, e := range envs[done:] {
		if _, err := f.a.Apply(f.ctx, 0, 1, e); err != nil {
			f.t.Fatal(err)
		}
	}
	return len(envs)
}

// delivered counts the outbound messages of event in c1's stream.
func (f *fixture) delivered(event string) int {
	f.t.Helper()
	msgs, err := f.rdb.XRange(f.ctx, f.c.Keys.Outbound("c1"), "-", "+").Result()
	if err != nil {
		f.t.Fatal(err)
	}
	n := 0
	for _, m := range msgs {
		o, err := streams.DecodeOutbound(m.ID, m.Values)
		if err != nil {
			f.t.Fatal(err)
		}
		for _, msg := range o.Messages {
			if msg.Event == event {
				n++
			}
		}
	}
	return n
}

// TestPublishAfterIdempotencyExpired: once the record of an
// Idempotency-Key has expired, a publish with that key is a new request,
// delivered to the room's members; a retry while the record lives is
// not delivered again.
func TestPublishAfterIdempotencyExpired(t *testing.T) {
	f := newFixture(t)
	f.apply(schemas.EventJoinRoom, "r1", "alice", "sA", "c1", nil)
	done := len(f.inbound("r1"))
	pub := func() Accepted {
		t.Helper()
		status, b := f.do("POST", "/api/v1/rooms/r1/events", `{"event":"app:paid","data":{"order":42}}`, "Idempotency-Key", "order-42")
		var acc Accepted
		if status != 202 || json.Unmarshal([]byte(b), &acc) != nil {
			t.Fatalf("publish: %d %s", status, b)
		}
		return acc
	}
	pub()
	done = f.applyInbound("r1", done)
	if r := pub(); !r.Repeated {
		t.Errorf("a retry while the record lives: %+v", r)
	}
	done = f.applyInbound("r1", done)
	if n := f.delivered("app:paid"); n != 1 {
		t.Fatalf("delivered %d times, want once", n)
	}
	// The record expires (24 h later).
	f.rdb.Del(f.ctx, f.c.Keys.Idempotency(idemDigest("r1", "order-42")))
	if r := pub(); r.Repeated {
		t.Errorf("the key after its record expired answered as a repeat: %+v", r)
	}
	f.applyInbound("r1", done)
	if n := f.delivered("app:paid"); n != 2 {
		t.Errorf("the publish after the record expired: delivered %d times in all, want 2", n)
	}
}

// TestPublishRetriedAfterACrash: a request whose record stayed pending
// (it crashed between its append and its answer) is taken over by a
// retry once abandoned, appended again under the same number, and
// applied once.
func TestPublishRetriedAfterACrash(t *testing.T) {
	f := newFixture(t)
	f.apply(schemas.EventJoinRoom, "r1", "alice", "sA", "c1", nil)
	done := len(f.inbound("r1"))
	body := `{"event":"app:paid","data":{"order":7}}`
	if status, b := f.do("POST", "/api/v1/rooms/r1/events", body, "Idempotency-Key", "order-7"); status != 202 {
		t.Fatalf("publish: %d %s", status, b)
	}
	key := f.c.Keys.Idempotency(idemDigest("r1", "order-7"))
	rec := strings.Fields(f.rdb.Get(f.ctx, key).Val())
	if len(rec) != 4 || rec[0] != "done" {
		t.Fatalf("record %q", rec)
	}
	// As if the first request had crashed after its append: still
	// pending, and abandoned.
	f.rdb.Set(f.ctx, key, "pending "+rec[1]+" "+rec[3]+" 0", redis.KeepTTL)
	status, b := f.do("POST", "/api/v1/rooms/r1/events", body, "Idempotency-Key", "order-7")
	if status != 202 {
		t.Fatalf("retry: %d %s", status, b)
	}
	envs := f.inbound("r1")
	if len(envs) != done+2 || envs[done].Seq != envs[done+1].Seq || envs[done].Origin != envs[done+1].Origin {
		t.Fatalf("the retry is not appended under the first's number: %+v", envs[done:])
	}
	f.applyInbound("r1", done)
	if n := f.delivered("app:paid"); n != 1 {
		t.Errorf("a retried publish delivered %d times, want once", n)
	}
	// A pending request not yet abandoned: 409.
	f.rdb.Set(f.ctx, key, "pending "+rec[1]+" "+rec[3]+" 99999999999999", redis.KeepTTL)
	if status, _ := f.do("POST", "/api/v1/rooms/r1/events", body, "Idempotency-Key", "order-7"); status != 409 {
		t.Errorf("a request in progress: %d", status)
	}
}

// idemDigest is the digest Publish names a key's record by.
func idemDigest(room, key string) string {
	sum := sha256.Sum256([]byte(room + "\x00" + key))
	return hex.EncodeToString(sum[:12])
}

func TestReadRoomsAndUsers(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < 7; i++ {
		f.apply(schemas.EventJoinRoom, "room-"+strconv.Itoa(i), "alice", "sA", "c1", nil)
	}
	f.apply(schemas.EventJoinRoom, "room-0", "bob", "sB", "c2", nil)
	f.apply(schemas.EventLockRoom, "room-0", "bob", "sB", "c2", map[string]string{"roomId": "room-0", "reason": "review"})
	f.apply(schemas.EventFileUploadStarted, "room-0", "alice", "sA", "c1", map[string]any{"roomId": "room-0", "fileId": "f1", "uploadId": "f1", "fileName": "a", "size": 1})
	// keys that look alike but are not rooms
	f.rdb.Set(f.ctx, "t:replay:x:room:{zz}", "1", 0)
	f.rdb.HSet(f.ctx, "other:room:{zz}", "id", "zz")

	status, body := f.do("GET", "/api/v1/rooms/room-0", "")
	var room schemas.RoomSnapshot
	_ = json.Unmarshal([]byte(body), &room)
	if status != 200 || len(room.Members) != 2 || !room.IsLocked || room.LockedBy != "bob" || room.LockReason != "review" || len(room.ActiveUploads) != 0 {
		// the upload was refused: bob holds the lock
		t.Errorf("room: %d %s", status, body)
	}

	seen := map[string]int{}
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 20 {
			t.Fatal("the listing does not end")
		}
		status, body := f.do("GET", "/api/v1/rooms?limit=2&cursor="+cursor, "")
		var page RoomPage
		if err := json.Unmarshal([]byte(body), &page); status != 200 || err != nil {
			t.Fatalf("page: %d %s", status, body)
		}
		for _, r := range page.Rooms {
			seen[r.RoomID]++
			if r.RoomID == "room-0" && (r.Members != 2 || !r.IsLocked) {
				t.Errorf("summary of room-0: %+v", r)
			}
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if len(seen) != 7 {
		t.Errorf("listed %v, want room-0..room-6", seen)
	}

	f.rdb.SAdd(f.ctx, f.c.Keys.UserSockets("alice"), "sA", "sGone")
	f.rdb.HSet(f.ctx, f.c.Keys.Socket("sA"), "connector", "c1", "state", "live", "connectedAt", "2026-01-02T03:04:05.000Z")
	status, body = f.do("GET", "/api/v1/users/alice", "")
	var u UserInfo
	_ = json.Unmarshal([]byte(body), &u)
	want := UserInfo{UserID: "alice", Sockets: []SocketInfo{{SocketID: "sA", Connector: "c1", ConnectedAt: "2026-01-02T03:04:05.000Z", State: "live"}},
		Rooms: []string{"room-0", "room-1", "room-2", "room-3", "room-4", "room-5", "room-6"}}
	if diff := cmp.Diff(want, u); status != 200 || diff != "" {
		t.Errorf("user: %d (-want,+got):\n%s", status, diff)
	}
}

func TestDisconnectWritesToEachConnector(t *testing.T) {
	f := newFixture(t)
	f.apply(schemas.EventJoinRoom, "r1", "alice", "sA", "c1", nil)
	f.rdb.SAdd(f.ctx, f.c.Keys.UserSockets("alice"), "sA", "sA2", "sA3")
	f.rdb.HSet(f.ctx, f.c.Keys.Socket("sA"), "connector", "c1", "state", "live")
	f.rdb.HSet(f.ctx, f.c.Keys.Socket("sA2"), "connector", "c2", "state", "held")
	f.rdb.HSet(f.ctx, f.c.Keys.Socket("sA3"), "connector", "c2", "state", "closed")
	// sA4 is on c3, which died (no heartbeat): the workers remove it.
	f.rdb.SAdd(f.ctx, f.c.Keys.UserSockets("alice"), "sA4")
	f.rdb.HSet(f.ctx, f.c.Keys.Socket("sA4"), "connector", "c3", "state", "live")
	f.beat("c1", "c2")
	before := time.Now()
	status, body := f.do("POST", "/api/v1/users/alice/disconnect", `{"reason":"account closed","revokeTokens":true}`)
	var d Disconnected
	_ = json.Unmarshal([]byte(body), &d)
	if status != 202 || !cmp.Equal(d.Connectors, []string{"c1", "c2"}) || len(d.Sockets) != 2 || d.TokensRevokedBefore == "" {
		t.Fatalf("disconnect: %d %s", status, body)
	}
	if n, _ := f.rdb.Exists(f.ctx, f.c.Keys.Outbound("c3")).Result(); n != 0 {
		t.Error("a dead connector's outbound stream was written")
	}
	for conn, sid := range map[string]string{"c1": "sA", "c2": "sA2"} {
		msgs, _ := f.rdb.XRevRangeN(f.ctx, f.c.Keys.Outbound(conn), "+", "-", 1).Result()
		if len(msgs) != 1 {
			t.Fatalf("%s: no outbound entry", conn)
		}
		o, err := streams.DecodeOutbound(msgs[0].ID, msgs[0].Values)
		if err != nil || len(o.Messages) != 1 || o.Messages[0].Event != streams.DisconnectEvent || !cmp.Equal(o.Messages[0].To, []string{sid}) ||
			!bytes.Contains(o.Messages[0].Body, []byte("account closed")) {
			t.Errorf("%s: %+v %v", conn, o, err)
		}
	}
	for _, tc := range []struct {
		iat     time.Time
		revoked bool
	}{
		{time.Time{}, true},
		{before.Add(-time.Hour), true},
		{before.Truncate(time.Second), true},
		{before.Add(2 * time.Second), false},
	} {
		if got, err := f.c.Revoked(f.ctx, "alice", tc.iat); err != nil || got != tc.revoked {
			t.Errorf("token issued at %v: revoked %v (%v), want %v", tc.iat, got, err, tc.revoked)
		}
	}
	if got, _ := f.c.Revoked(f.ctx, "bob", time.Time{}); got {
		t.Error("another user's tokens are revoked")
	}
	if ttl := f.rdb.PTTL(f.ctx, f.c.Keys.UserRevoked("alice")).Val(); ttl < 29*24*time.Hour {
		t.Errorf("revocation TTL %s", ttl)
	}
}
