package hooks

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/roomstream/roomstream/streams"
)

// A delivery follows the Standard Webhooks convention: the body is JSON,
// webhook-id names the event (the same on every retry, so the receiver
// can drop repeats), webhook-timestamp is the attempt's time in Unix
// seconds, and webhook-signature is "v1," and the base64 HMAC-SHA256 of
// "id.timestamp.body" with the secret's key. The standard's own Go
// library signs it (and verifies it in the tests).

// signer signs deliveries with the secret of ROOMSTREAM_WEBHOOK_SECRET.
type signer struct{ wh *standardwebhooks.Webhook }

func newSigner(secret string) (*signer, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return nil, err
	}
	return &signer{wh: wh}, nil
}

// sign sets the three headers of a delivery of body, as event id, at t.
func (s *signer) sign(h http.Header, id string, t time.Time, body []byte) error {
	sig, err := s.wh.Sign(id, t, body)
	if err != nil {
		return err
	}
	h.Set(standardwebhooks.HeaderWebhookID, id)
	h.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(t.Unix(), 10))
	h.Set(standardwebhooks.HeaderWebhookSignature, sig)
	return nil
}

// Payload is the JSON body of a delivery: the feed event, shaped as the
// Standard Webhooks convention suggests (type, timestamp, data).
type Payload struct {
	ID        string          `json:"id"`        // the webhook-id header: stable across retries
	Type      string          `json:"type"`      // the event's name
	Timestamp string          `json:"timestamp"` // when its inbound entry was accepted (ISO-8601)
	RoomID    string          `json:"roomId"`
	EntryID   string          `json:"entryId"` // the inbound entry that produced it
	Data      json.RawMessage `json:"data"`    // the payload the room's members received
}

// body encodes the delivery of ev.
func body(ev *streams.FeedEvent) []byte {
	p := Payload{ID: ev.EventID(), Type: ev.Type, Timestamp: ev.At, RoomID: ev.RoomID, EntryID: ev.EntryID, Data: ev.Data}
	if !json.Valid(p.Data) {
		// Never written so; delivered as a string rather than not at all.
		p.Data, _ = json.Marshal(string(ev.Data))
	}
	return streams.MustJSON(p)
}
