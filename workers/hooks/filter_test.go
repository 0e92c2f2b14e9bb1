package hooks

import (
	"testing"
)

// TestFilter: WEBHOOK_EVENTS names the types a backend receives, exactly
// or by a prefix ending in *; empty, every type.
func TestFilter(t *testing.T) {
	for _, tc := range []struct {
		list       []string
		yes, no    []string
		invalidErr bool
	}{
		{list: nil, yes: []string{"user-joined", "file-upload-progress", "app:note"}},
		{list: []string{"user-joined", " room-locked "}, yes: []string{"user-joined", "room-locked"}, no: []string{"user-left", "room-unlocked", "user-joined2"}},
		{list: []string{"app:*", "file-added"}, yes: []string{"app:note", "app:", "file-added"}, no: []string{"ap:note", "file-upload-started"}},
		{list: []string{"", " "}, yes: []string{"user-left"}},
		{list: []string{"*"}, invalidErr: true},
		{list: []string{"a*b"}, invalidErr: true},
		{list: []string{"a**"}, invalidErr: true},
	} {
		f, err := newFilter(tc.list)
		if tc.invalidErr {
			if err == nil {
				t.Errorf("%q: accepted", tc.list)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.list, err)
		}
		for _, typ := range tc.yes {
			if !f.wants(typ) {
				t.Errorf("%q drops %s", tc.list, typ)
			}
		}
		for _, typ := range tc.no {
			if f.wants(typ) {
				t.Errorf("%q delivers %s", tc.list, typ)
			}
		}
	}
}
