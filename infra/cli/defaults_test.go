package cli

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/kelseyhightower/envconfig"

	"github.com/roomstream/roomstream/connector"
	"github.com/roomstream/roomstream/connector/api"
	"github.com/roomstream/roomstream/connector/demo"
	"github.com/roomstream/roomstream/streams"
	"github.com/roomstream/roomstream/workers"
	"github.com/roomstream/roomstream/workers/hooks"
)

// TestDefaults holds streams.Defaults, through which Go code reads the
// defaults the envconfig tags write, to what envconfig itself makes of
// them, and the few constants still written beside a tag to their tag.
func TestDefaults(t *testing.T) {
	// A prefix no variable has: envconfig sees an empty environment.
	const prefix = "ROOMSTREAM_DEFAULTS_TEST_UNSET"
	check := func(name string, fromTags, fromEnv any) {
		t.Helper()
		if err := envconfig.Process(prefix, fromEnv); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(fromEnv, fromTags, cmp.AllowUnexported(connector.Config{})); diff != "" {
			t.Errorf("%s: streams.Defaults differs from envconfig (-envconfig +Defaults):\n%s", name, diff)
		}
	}
	var sc, sc2 streams.Config
	streams.Defaults(&sc)
	check("streams.Config", &sc, &sc2)
	var wc, wc2 workers.Config
	streams.Defaults(&wc)
	check("workers.Config", &wc, &wc2)
	var cc, cc2 connector.Config
	streams.Defaults(&cc)
	check("connector.Config", &cc, &cc2)
	dc, dc2 := demo.DefaultConfig(), demo.Config{}
	check("demo.Config", &dc, &dc2)
	var rc, rc2 replayConfig
	streams.Defaults(&rc)
	check("replayConfig", &rc, &rc2)
	var oc, oc2 opsConfig
	streams.Defaults(&oc)
	check("opsConfig", &oc, &oc2)
	var ac, ac2 api.Config
	streams.Defaults(&ac)
	check("api.Config", &ac, &ac2)
	var hc, hc2 hooks.Config
	streams.Defaults(&hc)
	check("hooks.Config", &hc, &hc2)

	if cc.MaxPayload != connector.DefaultMaxPayload {
		t.Errorf("connector.DefaultMaxPayload %d, MAX_PAYLOAD's default %d", connector.DefaultMaxPayload, cc.MaxPayload)
	}
	if api.DefaultRevokeTTL != ac.RevokeTTL || oc.RevokeTTL != ac.RevokeTTL {
		t.Errorf("API_REVOKE_TTL: api.DefaultRevokeTTL %s, connector %s, rooms/users %s", api.DefaultRevokeTTL, ac.RevokeTTL, oc.RevokeTTL)
	}
	if rc.EmptyRoomTTL != workers.DefaultEmptyRoomTTL || rc.Limits != workers.DefaultLimits() {
		t.Errorf("replay's EMPTY_ROOM_TTL %s and limits %+v, the workers' %s and %+v", rc.EmptyRoomTTL, rc.Limits, workers.DefaultEmptyRoomTTL, workers.DefaultLimits())
	}
}
