package demo

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/roomstream/roomstream/connector/auth"
	"github.com/roomstream/roomstream/schemas"
)

func TestMintToken(t *testing.T) {
	e := newTestEnv(t, nil)
	verifier := auth.NewVerifier(testSecret, "", "", 0)
	type want struct {
		status int
		code   schemas.Code
		field  string
		user   string
		name   string
		msg    string // part of the message
	}
	cases := []struct {
		name string
		body string
		want want
	}{
		{"plain name", `{"name":"Alice"}`, want{status: 200, user: "alice", name: "Alice"}},
		{"white space folded", `{"name":"  Bob   the\u00a0Builder "}`, want{status: 200, user: "bob-the-builder", name: "Bob the Builder"}},
		{"accents", `{"name":"Zoë Ångström"}`, want{status: 200, user: "zo-ngstr-m", name: "Zoë Ångström"}},
		{"no ASCII letters", `{"name":"日本"}`, want{status: 200, user: UserID("日本"), name: "日本"}},
		{"64 characters", `{"name":"` + strings.Repeat("é", 64) + `"}`, want{status: 200, name: strings.Repeat("é", 64)}},
		{"65 characters", `{"name":"` + strings.Repeat("a", 65) + `"}`, want{status: 400, code: schemas.CodeInvalidPayload, field: "name", msg: "at most 64 characters"}},
		{"missing", `{}`, want{status: 400, code: schemas.CodeInvalidPayload, field: "name", msg: "name is required"}},
		{"empty", `{"name":""}`, want{status: 400, code: schemas.CodeInvalidPayload, field: "name", msg: "name is required"}},
		{"blank", `{"name":"   "}`, want{status: 400, code: schemas.CodeInvalidPayload, field: "name", msg: "name is required"}},
		{"line break", `{"name":"a\nb"}`, want{status: 400, code: schemas.CodeInvalidPayload, field: "name", msg: "control characters"}},
		{"escape", `{"name":"a\u001bb"}`, want{status: 400, code: schemas.CodeInvalidPayload, field: "name", msg: "control characters"}},
		{"not JSON", `name=Alice`, want{status: 400, code: schemas.CodeInvalidPayload, msg: `{"name":"Alice"}`}},
		{"number", `{"name":5}`, want{status: 400, code: schemas.CodeInvalidPayload}},
		{"two objects", `{"name":"A"}{"name":"B"}`, want{status: 400, code: schemas.CodeInvalidPayload}},
		{"empty body", ``, want{status: 400, code: schemas.CodeInvalidPayload}},
		{"too large", `{"name":"` + strings.Repeat("a", 5000) + `"}`, want{status: 413, code: schemas.CodePayloadTooLarge, msg: "at most 4096 bytes"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, body := e.do("POST", "/demo/token", "", c.body)
			if res.StatusCode != c.want.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, c.want.status, body)
			}
			if c.want.status != 200 {
				var eb struct{ Error schemas.Error }
				if err := json.Unmarshal(body, &eb); err != nil {
					t.Fatalf("answer is not JSON: %s", body)
				}
				if eb.Error.Code != c.want.code || eb.Error.Field != c.want.field || !strings.Contains(eb.Error.Message, c.want.msg) {
					t.Errorf("error %+v, want code %s field %q message containing %q", eb.Error, c.want.code, c.want.field, c.want.msg)
				}
				return
			}
			var tr TokenResponse
			if err := json.Unmarshal(body, &tr); err != nil {
				t.Fatalf("answer: %v: %s", err, body)
			}
			ident, verr := verifier.Verify(tr.Token)
			if verr != nil {
				t.Fatalf("minted token does not verify: %v", verr)
			}
			if c.want.user != "" && tr.UserID != c.want.user {
				t.Errorf("userId %q, want %q", tr.UserID, c.want.user)
			}
			if diff := cmp.Diff([2]string{tr.UserID, tr.UserName}, [2]string{ident.UserID, ident.UserName}); diff != "" {
				t.Errorf("answer and token disagree (-answer,+token):\n%s", diff)
			}
			if tr.UserName != c.want.name {
				t.Errorf("userName %q, want %q", tr.UserName, c.want.name)
			}
			if !schemas.ValidID(tr.UserID) {
				t.Errorf("userId %q is not a valid roomstream id", tr.UserID)
			}
			exp, err := time.Parse(time.RFC3339, tr.ExpiresAt)
			if err != nil || exp.Sub(ident.Expires).Abs() > 2*time.Second {
				t.Errorf("expiresAt %q does not match the token's exp %s", tr.ExpiresAt, ident.Expires)
			}
			if time.Until(ident.Expires) < DefaultTokenTTL-time.Minute {
				t.Errorf("token expires in %s, want about %s", time.Until(ident.Expires), DefaultTokenTTL)
			}
			want := Limits{MaxUpload: DefaultMaxUpload, UploadRate: 0, ChunkSize: ChunkSize}
			if diff := cmp.Diff(want, tr.Limits); diff != "" {
				t.Errorf("limits (-want,+got):\n%s", diff)
			}
		})
	}
}

func TestMintTokenOnlyPOST(t *testing.T) {
	e := newTestEnv(t, nil)
	res, _ := e.do("GET", "/demo/token", "", nil)
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /demo/token = %d, want 405", res.StatusCode)
	}
}

func TestUserID(t *testing.T) {
	cases := map[string]string{
		"Alice":           "alice",
		"alice":           "alice",
		"Bob the Builder": "bob-the-builder",
		"R2-D2!!":         "r2-d2",
		"--x--":           "x",
		"O'Brien":         "o-brien",
	}
	for in, want := range cases {
		if got := UserID(in); got != want {
			t.Errorf("UserID(%q) = %q, want %q", in, got, want)
		}
	}
	a, b := UserID("日本"), UserID("中国")
	if a == b || !strings.HasPrefix(a, "user-") || !schemas.ValidID(a) {
		t.Errorf("names without ASCII letters: %q and %q, want distinct valid user-<hash> ids", a, b)
	}
	if long := UserID(strings.Repeat("ab ", 100)); len(long) > schemas.MaxIDLen || !schemas.ValidID(long) || strings.HasSuffix(long, "-") {
		t.Errorf("long name gives %q", long)
	}
}

// FuzzMintToken: whatever the body, the answer is a token for a valid
// user or a clear refusal, never a crash or a 5xx.
func FuzzMintToken(f *testing.F) {
	for _, s := range []string{`{"name":"Alice"}`, `{"name":""}`, `{"name":"\u0000"}`, `[]`, `{"name":"日本 語"}`, "\xff"} {
		f.Add([]byte(s))
	}
	ac := auth.Config{JWTSecret: testSecret}
	mux := http.NewServeMux()
	app, err := Mount(mux, ac, DefaultConfig(), discardLogger())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = app.Close() })
	verifier := auth.NewVerifier(testSecret, "", "", 0)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := serve(mux, "POST", "/demo/token", body)
		switch rec.Code {
		case 200:
			var tr TokenResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &tr); err != nil {
				t.Fatalf("200 with a bad body: %s", rec.Body)
			}
			if _, verr := verifier.Verify(tr.Token); verr != nil {
				t.Fatalf("minted token does not verify: %v", verr)
			}
		case 400, 413:
			var eb struct{ Error *schemas.Error }
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error == nil || eb.Error.Message == "" {
				t.Fatalf("refusal without a message: %s", rec.Body)
			}
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
	})
}
