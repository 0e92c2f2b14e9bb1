package api

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/roomstream/roomstream/connector/netguard"
)

// TestFailedAuthLimited: after FailedAuthBurst failed authentications an
// address gets 429, even with the right key, until its budget refills;
// another address is not affected. Behind a trusted proxy the address is
// the client's.
func TestFailedAuthLimited(t *testing.T) {
	trust, err := netguard.ParseTrust([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	h := NewHandler(NewService(nil, nil), key, slog.New(slog.NewTextHandler(io.Discard, nil)), nil,
		&HandlerOptions{ClientKey: trust.ClientKey})
	srv := httptest.NewServer(h)
	defer srv.Close()
	call := func(client, auth string) int {
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/openapi.json", nil)
		req.Header.Set("Authorization", auth)
		req.Header.Set("X-Forwarded-For", client)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for i := range FailedAuthBurst {
		if got := call("198.51.100.1", "Bearer wrong-key-0123456789"); got != 401 {
			t.Fatalf("failure %d: %d, want 401", i+1, got)
		}
	}
	if got := call("198.51.100.1", "Bearer wrong-key-0123456789"); got != http.StatusTooManyRequests {
		t.Errorf("failure %d: %d, want 429", FailedAuthBurst+1, got)
	}
	if got := call("198.51.100.1", "Bearer "+key); got != http.StatusTooManyRequests {
		t.Errorf("the right key from a limited address: %d, want 429", got)
	}
	if got := call("198.51.100.2", "Bearer "+key); got != 200 {
		t.Errorf("the right key from another address: %d", got)
	}
}
