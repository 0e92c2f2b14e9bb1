package netguard

import (
	"net/http"
	"net/netip"
	"testing"
)

func mustTrust(t *testing.T, cidrs ...string) Trust {
	t.Helper()
	tr, err := ParseTrust(cidrs)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestParseTrust(t *testing.T) {
	tr := mustTrust(t, "10.0.0.0/8", " 192.0.2.7 ", "", "2001:db8::/32", "::ffff:172.16.0.0/108")
	for a, want := range map[string]bool{
		"10.1.2.3": true, "11.0.0.1": false, "192.0.2.7": true, "192.0.2.8": false,
		"2001:db8:1::1": true, "2001:db9::1": false, "::ffff:10.0.0.1": true, "172.16.5.5": true,
	} {
		if got := tr.Trusted(netip.MustParseAddr(a)); got != want {
			t.Errorf("Trusted(%s) = %v, want %v", a, got, want)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.local", "::ffff:0:0/90"} {
		if _, err := ParseTrust([]string{bad}); err == nil {
			t.Errorf("ParseTrust(%q) accepted", bad)
		}
	}
	if !(Trust{}).Empty() || tr.Empty() {
		t.Error("Empty")
	}
}

// TestClientAddr: the client is the peer unless the peer is trusted; then
// the right-most X-Forwarded-For entry that is not trusted. What an
// untrusted client writes in the header changes nothing.
func TestClientAddr(t *testing.T) {
	tr := mustTrust(t, "10.0.0.0/8")
	for _, tc := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"direct", "203.0.113.5:4000", nil, "203.0.113.5"},
		{"direct, forged header ignored", "203.0.113.5:4000", []string{"198.51.100.1"}, "203.0.113.5"},
		{"one proxy", "10.0.0.2:4000", []string{"203.0.113.5"}, "203.0.113.5"},
		{"forged prefix left of the proxy's entry", "10.0.0.2:4000", []string{"198.51.100.1, 203.0.113.5"}, "203.0.113.5"},
		{"two trusted proxies", "10.0.0.2:4000", []string{"203.0.113.5, 10.0.0.9"}, "203.0.113.5"},
		{"several headers", "10.0.0.2:4000", []string{"198.51.100.1", "203.0.113.5", "10.0.0.9"}, "203.0.113.5"},
		{"trusted proxy without the header", "10.0.0.2:4000", nil, "10.0.0.2"},
		{"all trusted", "10.0.0.2:4000", []string{"10.0.0.3, 10.0.0.4"}, "10.0.0.3"},
		{"garbage stops at the proxy that passed it", "10.0.0.2:4000", []string{"203.0.113.5, junk"}, "10.0.0.2"},
		{"entry with a port", "10.0.0.2:4000", []string{"203.0.113.5:1234"}, "203.0.113.5"},
		{"IPv6 entry in brackets", "10.0.0.2:4000", []string{"[2001:db8::5]"}, "2001:db8::5"},
		{"IPv6 peer", "[2001:db8::5]:4000", nil, "2001:db8::5"},
		{"mapped peer", "[::ffff:203.0.113.5]:4000", nil, "203.0.113.5"},
	} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.peer
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := tr.ClientAddr(r).String(); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestKey: IPv4 addresses are their own key; IPv6 ones share their /64.
func TestKey(t *testing.T) {
	for a, want := range map[string]string{
		"203.0.113.5":             "203.0.113.5",
		"::ffff:203.0.113.5":      "203.0.113.5",
		"2001:db8:1:2:3:4:5:6":    "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1":    "2001:db8:1:2::/64",
		"fe80::1%eth0":            "fe80::/64",
		"2001:db8:1:3::1":         "2001:db8:1:3::/64",
		"::1":                     "::/64",
		"2001:db8:ffff:ffff::abc": "2001:db8:ffff:ffff::/64",
	} {
		if got := Key(netip.MustParseAddr(a)); got != want {
			t.Errorf("Key(%s) = %s, want %s", a, got, want)
		}
	}
	if Key(netip.Addr{}) != "" {
		t.Error("Key of no address")
	}
}

func TestLimiter(t *testing.T) {
	l := NewLimiter(1, 3)
	for i := range 3 {
		if !l.Allow("a") {
			t.Fatalf("token %d of a burst of 3 refused", i+1)
		}
	}
	if !l.Spent("a") || l.Allow("a") {
		t.Error("a 4th token at once")
	}
	if l.Spent("b") || !l.Allow("b") {
		t.Error("keys share a bucket")
	}
	free := NewLimiter(0, 0)
	for range 100 {
		if !free.Allow("a") || free.Spent("a") {
			t.Fatal("a limiter with no rate refused")
		}
	}
}
