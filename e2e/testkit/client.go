package testkit

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/roomstream/roomstream/connector/auth"
	"github.com/roomstream/roomstream/e2e/sioclient"
	"github.com/roomstream/roomstream/schemas"
)

// Token returns an HS256 token for user (display name name) signed with
// secret and valid for ttl. A token the connector would refuse is built
// by hand where a test needs one.
func Token(t testing.TB, secret, user, name string, ttl time.Duration) string {
	t.Helper()
	tok, err := auth.Sign(secret, user, name, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Auth signs the tokens of a test's users with Secret, the JWT secret
// the deployment under test is configured with; they are valid for an
// hour, longer than any test.
type Auth struct{ Secret string }

// Token returns a token for user (display name name).
func (a Auth) Token(t testing.TB, user, name string) string {
	t.Helper()
	return Token(t, a.Secret, user, name, time.Hour)
}

// Dial connects to the connector at base as user, like Dial.
func (a Auth) Dial(t testing.TB, base, user, name string) *sioclient.Client {
	t.Helper()
	return dial(t, base, &sioclient.Options{Token: a.Token(t, user, name)}, " as "+user)
}

// Dial connects to the connector at base with opts and fails the test
// when it cannot. The connection is dropped when the test ends, without a
// goodbye, so that a test's end looks to the server like a lost network,
// not like users leaving.
func Dial(t testing.TB, base string, opts *sioclient.Options) *sioclient.Client {
	t.Helper()
	return dial(t, base, opts, "")
}

func dial(t testing.TB, base string, opts *sioclient.Options, as string) *sioclient.Client {
	t.Helper()
	c, err := sioclient.Dial(context.Background(), base, opts)
	if err != nil {
		t.Fatalf("dial %s%s: %v", base, as, err)
	}
	t.Cleanup(func() { c.Drop() })
	return c
}

// Within returns a context that ends after d, or when the test ends.
func Within(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// AckTimeout bounds how long Ack and MustAck wait for an acknowledgement.
const AckTimeout = 10 * time.Second

// Ack emits event with payload and returns its decoded acknowledgement,
// accepted or not; no acknowledgement within AckTimeout fails the test.
func Ack(t testing.TB, c *sioclient.Client, event string, payload any) schemas.Ack {
	t.Helper()
	raw, err := c.EmitAck(Within(t, AckTimeout), event, payload)
	if err != nil {
		t.Fatalf("%s: %v", event, err)
	}
	var a schemas.Ack
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("%s ack %s: %v", event, raw, err)
	}
	return a
}

// MustAck is Ack for an event that must be accepted: a refusal fails the
// test.
func MustAck(t testing.TB, c *sioclient.Client, event string, payload any) schemas.Ack {
	t.Helper()
	a := Ack(t, c, event, payload)
	if !a.OK {
		t.Fatalf("%s refused: %+v", event, a.Error)
	}
	return a
}

// WaitForTimeout bounds how long WaitFor waits.
const WaitForTimeout = 15 * time.Second

// WaitFor returns the next event named name whose first argument contains
// every substring in has; none within WaitForTimeout fails the test.
func WaitFor(t testing.TB, c *sioclient.Client, name string, has ...string) sioclient.Event {
	t.Helper()
	return WaitForWithin(t, WaitForTimeout, c, name, has...)
}

// WaitForWithin is WaitFor with its own time limit.
func WaitForWithin(t testing.TB, d time.Duration, c *sioclient.Client, name string, has ...string) sioclient.Event {
	t.Helper()
	ctx := Within(t, d)
	for {
		ev, err := c.Wait(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		ok := true
		for _, h := range has {
			if !strings.Contains(string(ev.Args[0]), h) {
				ok = false
			}
		}
		if ok {
			return ev
		}
	}
}
