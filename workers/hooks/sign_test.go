package hooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/roomstream/roomstream/streams"
)

// The example of the Standard Webhooks specification (and of its
// libraries' tests): this secret, id, time and body sign to this value.
const (
	specSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = 1614265330
	specBody      = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

// TestSignatureMatchesTheSpec: a delivery's headers are the
// specification's for its example vector, and a receiver verifying with
// the standard's library (or with a few lines of crypto/hmac, as a
// backend in another language would) accepts them.
func TestSignatureMatchesTheSpec(t *testing.T) {
	s, err := newSigner(specSecret)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	if err := s.sign(h, specID, time.Unix(specTimestamp, 0), []byte(specBody)); err != nil {
		t.Fatal(err)
	}
	want := http.Header{"Webhook-Id": {specID}, "Webhook-Timestamp": {"1614265330"}, "Webhook-Signature": {specSignature}}
	if diff := cmp.Diff(want, h); diff != "" {
		t.Fatalf("headers (-spec,+got):\n%s", diff)
	}

	// Another delivery, now: verified by the library, and by hand.
	now := time.Now()
	body := []byte(`{"type":"room-locked"}`)
	h = http.Header{}
	if err := s.sign(h, "evt_3_1-0", now, body); err != nil {
		t.Fatal(err)
	}
	wh, _ := standardwebhooks.NewWebhook(specSecret)
	if err := wh.Verify(body, h); err != nil {
		t.Errorf("the standard's library refuses the signature: %v", err)
	}
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(specSecret, SecretPrefix))
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(h.Get("webhook-id") + "." + h.Get("webhook-timestamp") + "." + string(body)))
	if got, want := h.Get("webhook-signature"), "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)); got != want {
		t.Errorf("signature %q, by hand %q", got, want)
	}
	if err := wh.Verify([]byte(`{"type":"room-unlocked"}`), h); err == nil {
		t.Error("the signature of one body verifies another")
	}
}

// TestPayload: a delivery's body is the feed event, its data the payload
// the room's members received, as JSON (not a string of it).
func TestPayload(t *testing.T) {
	ev := &streams.FeedEvent{ID: "17-2", Partition: 3, Type: "room-locked", RoomID: "r1", EntryID: "16-0",
		At: "2026-01-02T03:04:05.000Z", Data: []byte(`{"roomId":"r1","lockedBy":"alice"}`)}
	var got map[string]any
	if err := json.Unmarshal(body(ev), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"id": "evt_3_17-2", "type": "room-locked", "timestamp": "2026-01-02T03:04:05.000Z", "roomId": "r1",
		"entryId": "16-0", "data": map[string]any{"roomId": "r1", "lockedBy": "alice"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("body (-want,+got):\n%s", diff)
	}
}
