package hooks

import (
	"fmt"
	"strings"
)

// filter says which event types a backend receives (ROOMSTREAM_WEBHOOK_EVENTS):
// exact names, and prefixes written with a trailing * (custom events of
// the server API, e.g. "app:*"). No names: every event.
type filter struct {
	names    map[string]bool
	prefixes []string
}

func newFilter(list []string) (filter, error) {
	f := filter{}
	for _, n := range list {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if p, ok := strings.CutSuffix(n, "*"); ok {
			if p == "" || strings.Contains(p, "*") {
				return filter{}, fmt.Errorf("%q: a * may only end a prefix", n)
			}
			f.prefixes = append(f.prefixes, p)
			continue
		}
		if strings.Contains(n, "*") {
			return filter{}, fmt.Errorf("%q: a * may only end a prefix", n)
		}
		if f.names == nil {
			f.names = map[string]bool{}
		}
		f.names[n] = true
	}
	return f, nil
}

// all tells whether the filter lets every event through.
func (f filter) all() bool { return f.names == nil && f.prefixes == nil }

// wants tells whether events of type typ are delivered.
func (f filter) wants(typ string) bool {
	if f.all() || f.names[typ] {
		return true
	}
	for _, p := range f.prefixes {
		if strings.HasPrefix(typ, p) {
			return true
		}
	}
	return false
}
