package containers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zishang520/socket.io/clients/engine/v3/transports"
	zsocket "github.com/zishang520/socket.io/clients/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/roomstream/roomstream/e2e/sioclient"
	"github.com/roomstream/roomstream/schemas"
)

// zclient wraps github.com/zishang520/socket.io/clients/socket/v3, a Go
// Socket.IO client nobody here wrote, and records every event it gets.
type zclient struct {
	s      *zsocket.Socket
	mu     sync.Mutex
	events []sioclient.Event
	wake   chan struct{}
}

func dialZ(t *testing.T, url string, auth map[string]any) *zclient {
	t.Helper()
	// The library's Manager.Open creates the engine socket, which starts
	// connecting at once, and subscribes to its "open" event only
	// afterwards (zishang520/socket.io clients/socket v3.0.6,
	// manager.go): when the server answers first, "open" is lost and the
	// client never connects. A fresh client is tried again, and each such
	// loss is logged.
	for attempt := 1; ; attempt++ {
		z, err := dialZOnce(t, url, auth)
		if err == nil {
			return z
		}
		if !errors.Is(err, errNoZConnect) || attempt == 3 {
			t.Fatal(err)
		}
		t.Logf("zishang520 client, attempt %d: %v; trying a fresh client", attempt, err)
	}
}

var errNoZConnect = errors.New("zishang520 client: no connect")

func dialZOnce(t *testing.T, url string, auth map[string]any) (*zclient, error) {
	t.Helper()
	opts := zsocket.DefaultOptions()
	opts.SetTransports(types.NewSet(transports.WebSocket))
	opts.SetForceNew(true)
	opts.SetReconnection(false)
	// Connect only once the handlers below are in place: with auto-connect
	// the handshake runs on the library's goroutine and its "connect" can
	// fire before s.On("connect") is registered, which loses it.
	opts.SetAutoConnect(false)
	if auth != nil {
		opts.SetAuth(auth)
	}
	z := &zclient{wake: make(chan struct{})}
	connected := make(chan error, 1)
	s, err := zsocket.Connect(url, opts)
	if err != nil {
		return nil, fmt.Errorf("zishang520 connect %s: %w", url, err)
	}
	z.s = s
	s.OnAny(func(args ...any) {
		name, _ := args[0].(string)
		ev := sioclient.Event{Name: name, At: time.Now()}
		rest := args[1:]
		// Every event roomstream sends ends with its offset (connection
		// state recovery).
		if len(rest) > 1 {
			if off, ok := rest[len(rest)-1].(string); ok {
				ev.Offset, rest = off, rest[:len(rest)-1]
			}
		}
		for _, a := range rest {
			b, _ := json.Marshal(a)
			ev.Args = append(ev.Args, b)
		}
		z.mu.Lock()
		z.events = append(z.events, ev)
		close(z.wake)
		z.wake = make(chan struct{})
		z.mu.Unlock()
	})
	s.On("connect", func(...any) {
		select {
		case connected <- nil:
		default:
		}
	})
	s.On("connect_error", func(args ...any) {
		select {
		case connected <- fmt.Errorf("connect_error: %v", args):
		default:
		}
	})
	t.Cleanup(func() { s.Disconnect() })
	s.Connect()
	select {
	case err := <-connected:
		if err != nil {
			return nil, err
		}
	case <-time.After(5 * time.Second):
		s.Disconnect()
		return nil, fmt.Errorf("%w from %s in 5 s", errNoZConnect, url)
	}
	return z, nil
}

func (z *zclient) ack(ctx context.Context, event string, payload any) (schemas.Ack, error) {
	ch := make(chan []any, 1)
	if err := z.s.Emit(event, payload, func(args []any, err error) { ch <- args }); err != nil {
		return schemas.Ack{}, err
	}
	select {
	case args := <-ch:
		var a schemas.Ack
		if len(args) == 0 {
			return a, fmt.Errorf("empty ack for %s", event)
		}
		b, _ := json.Marshal(args[0])
		return a, json.Unmarshal(b, &a)
	case <-ctx.Done():
		return schemas.Ack{}, fmt.Errorf("no ack for %s: %w", event, ctx.Err())
	}
}

// wait returns the first event named name after the first skip of them
// that satisfies ok.
func (z *zclient) wait(ctx context.Context, name string, ok func(sioclient.Event) bool) (sioclient.Event, error) {
	seen := 0
	for {
		z.mu.Lock()
		evs, wake := z.events[seen:], z.wake
		seen = len(z.events)
		z.mu.Unlock()
		for _, ev := range evs {
			if ev.Name == name && (ok == nil || ok(ev)) {
				return ev, nil
			}
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return sioclient.Event{}, fmt.Errorf("zishang520 client: no %s: %w", name, ctx.Err())
		}
	}
}

func (z *zclient) all() []sioclient.Event {
	z.mu.Lock()
	defer z.mu.Unlock()
	return append([]sioclient.Event(nil), z.events...)
}
