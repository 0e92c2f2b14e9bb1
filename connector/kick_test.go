package connector

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/roomstream/roomstream/connector/api"
	"github.com/roomstream/roomstream/e2e/sioclient"
	"github.com/roomstream/roomstream/schemas"
)

// TestDisconnectAndRevoke: a disconnect from the server API closes the
// user's sockets with a Socket.IO DISCONNECT, the room hears user-left,
// and the revoked token is refused at connect and at authenticate, while
// other users are untouched.
func TestDisconnectAndRevoke(t *testing.T) {
	e := start(t, nil)
	aliceTok := token(t, "alice", "Alice", time.Hour)
	alice := dial(t, e, aliceTok)
	bob := dial(t, e, token(t, "bob", "Bob", time.Hour))
	for _, c := range []*sioclient.Client{alice, bob} {
		if a := ack(t, c, schemas.EventJoinRoom, map[string]string{"roomId": "r1"}); !a.OK {
			t.Fatalf("join: %+v", a.Error)
		}
	}
	svc := api.NewService(e.c, nil)
	d, err := svc.Disconnect(context.Background(), "alice", api.DisconnectRequest{Reason: "bye", RevokeTokens: true})
	if err != nil || len(d.Sockets) != 1 || d.Sockets[0] != alice.SID {
		t.Fatalf("disconnect: %+v %v", d, err)
	}
	select {
	case <-alice.Done():
		if alice.Reason() != "io server disconnect" {
			t.Errorf("alice's socket ended with %q", alice.Reason())
		}
	case <-time.After(2 * time.Second):
		t.Fatal("alice's socket still open")
	}
	ev, err := bob.Wait(waitCtx(t), schemas.EventUserLeft)
	if err != nil || !strings.Contains(string(ev.Args[0]), `"reason":"server_disconnect"`) {
		t.Errorf("user-left: %v %v", ev.Args, err)
	}
	_, err = sioclient.Dial(context.Background(), e.base, &sioclient.Options{Token: aliceTok})
	if ce, ok := sioclient.IsConnectError(err); !ok || !strings.Contains(string(ce.Data), "invalid_token") {
		t.Errorf("connect with the revoked token: %v", err)
	}
	c := dial(t, e, "")
	if a := ack(t, c, schemas.EventAuthenticate, map[string]string{"token": aliceTok}); a.OK || a.Error.Code != schemas.CodeInvalidToken {
		t.Errorf("authenticate with the revoked token: %+v", a)
	}
	if a := ack(t, bob, schemas.EventLockRoom, map[string]string{"roomId": "r1"}); !a.OK {
		t.Errorf("bob after alice's disconnect: %+v", a.Error)
	}
}
