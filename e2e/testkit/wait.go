package testkit

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// WaitUntil polls cond until it holds and returns how long that took; it
// fails the test when cond does not hold within bound (which the caller
// derives from the configured timeouts it waits on).
func WaitUntil(t testing.TB, what string, bound time.Duration, cond func() bool) time.Duration {
	t.Helper()
	began := time.Now()
	for !cond() {
		if time.Since(began) > bound {
			t.Fatalf("%s: not within %s", what, bound)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(began)
}

// WaitReady polls url (a process's /readyz) until it answers 200 OK. It
// gives up when ctx ends, with the last probe's error, or as soon as
// alive (nil: always alive) says the process is gone, with alive's error,
// so that a process that died is not waited for until the deadline.
func WaitReady(ctx context.Context, url string, alive func() error) error {
	hc := &http.Client{Timeout: time.Second}
	for {
		last := probe(ctx, hc, url)
		if last == nil {
			return nil
		}
		if alive != nil {
			if err := alive(); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (last probe: %v)", url, ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func probe(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", res.Status)
	}
	return nil
}
