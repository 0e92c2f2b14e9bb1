package testkit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/roomstream/roomstream/e2e/sioclient"
	"github.com/roomstream/roomstream/schemas"
)

// Member is a Go Socket.IO client (e2e/sioclient) that behaves like a
// browser tab with connection state recovery: when its connection drops
// without a goodbye, it reconnects with its pid and last offset, to
// another connector when its own is gone, and keeps every event it
// received, in order, across connections.
type Member struct {
	User, Name string
	token      string
	// next returns the base URL to (re)connect to; failed is the one that
	// just failed (empty on the first connection).
	next func(failed string) string

	mu         sync.Mutex
	cur        *sioclient.Client
	base       string
	sid        string
	events     []sioclient.Event
	reconnects int
	lostState  []string // reconnections that did not recover the session
	connected  chan struct{}
	closing    bool
	done       chan struct{}
}

// DialMember connects a member; next chooses the connector.
func DialMember(ctx context.Context, user, name, token string, next func(failed string) string) (*Member, error) {
	m := &Member{User: user, Name: name, token: token, next: next, connected: make(chan struct{}), done: make(chan struct{})}
	base := next("")
	c, err := sioclient.Dial(ctx, base, &sioclient.Options{Token: token, OnEvent: m.record})
	if err != nil {
		return nil, fmt.Errorf("%s: dial %s: %w", user, base, err)
	}
	m.cur, m.base, m.sid = c, base, c.SID
	close(m.connected)
	go m.watch()
	return m, nil
}

func (m *Member) record(ev sioclient.Event) {
	m.mu.Lock()
	m.events = append(m.events, ev)
	m.mu.Unlock()
}

// watch reconnects after every drop until Close.
func (m *Member) watch() {
	defer close(m.done)
	for {
		m.mu.Lock()
		c := m.cur
		m.mu.Unlock()
		<-c.Done()
		m.mu.Lock()
		if m.closing {
			m.mu.Unlock()
			return
		}
		m.connected = make(chan struct{})
		failed := m.base
		m.mu.Unlock()
		pid, offset := c.PID, c.Offset()
		delay := 100 * time.Millisecond
		deadline := time.Now().Add(60 * time.Second)
		for {
			base := m.next(failed)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			nc, err := sioclient.Dial(ctx, base, &sioclient.Options{Token: m.token, PID: pid, Offset: offset, OnEvent: m.record})
			cancel()
			if err == nil {
				m.mu.Lock()
				if m.closing {
					m.mu.Unlock()
					nc.Drop()
					return
				}
				m.cur, m.base = nc, base
				m.reconnects++
				if !nc.Recovered || nc.SID != m.sid {
					m.lostState = append(m.lostState, fmt.Sprintf("reconnected to %s without recovery (sid %s, was %s)", base, nc.SID, m.sid))
					m.sid = nc.SID
				}
				close(m.connected)
				m.mu.Unlock()
				break
			}
			if time.Now().After(deadline) {
				m.mu.Lock()
				m.lostState = append(m.lostState, fmt.Sprintf("could not reconnect for 60s: %v", err))
				m.mu.Unlock()
				return
			}
			failed = base
			time.Sleep(delay)
			delay = min(delay*2, time.Second)
		}
	}
}

// SID is the socket id (kept across recovered reconnections).
func (m *Member) SID() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sid
}

// Base is the connector the member is connected to.
func (m *Member) Base() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.base
}

// Reconnects counts reconnections; LostState lists those that did not
// recover the session.
func (m *Member) Reconnects() (int, []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reconnects, append([]string(nil), m.lostState...)
}

// Events returns a copy of every event received so far.
func (m *Member) Events() []sioclient.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]sioclient.Event(nil), m.events...)
}

// ErrUnknown means the connection dropped before the ack came: the event
// may or may not have been accepted.
var ErrUnknown = errors.New("no ack: connection dropped")

// Ack emits event and returns its ack. A dropped connection yields
// ErrUnknown once the member has reconnected (or after timeout).
func (m *Member) Ack(ctx context.Context, event string, payload any) (schemas.Ack, error) {
	m.mu.Lock()
	c, connected := m.cur, m.connected
	m.mu.Unlock()
	select {
	case <-connected:
	case <-ctx.Done():
		return schemas.Ack{}, ctx.Err()
	}
	m.mu.Lock()
	c = m.cur
	m.mu.Unlock()
	raw, err := c.EmitAck(ctx, event, payload)
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, sioclient.ErrConnectionLost) {
			return schemas.Ack{}, fmt.Errorf("%w: %v", ErrUnknown, err)
		}
		return schemas.Ack{}, err
	}
	var a schemas.Ack
	if err := json.Unmarshal(raw, &a); err != nil {
		return a, fmt.Errorf("ack of %s: %s: %w", event, raw, err)
	}
	return a, nil
}

// Close leaves cleanly (Socket.IO DISCONNECT).
func (m *Member) Close() {
	m.mu.Lock()
	m.closing = true
	c := m.cur
	m.mu.Unlock()
	_ = c.Close()
	<-m.done
}
