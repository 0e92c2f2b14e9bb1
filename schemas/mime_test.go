package schemas

import (
	"strings"
	"testing"
)

// TestValidMimeType: the one check of a file's mimeType that the client
// events, the server API and the demo share.
func TestValidMimeType(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"", true},
		{"image/png", true},
		{`text/plain; charset="utf-8"`, true},
		{strings.Repeat("a", MaxNameLen), true},
		{strings.Repeat("a", MaxNameLen+1), false},
		{"text/plain\n", false},
		{"text/\x7fplain", false},
		{"image/pñg", false},
	} {
		if got := ValidMimeType(tc.s); got != tc.want {
			t.Errorf("ValidMimeType(%q) = %v, want %v", tc.s, got, tc.want)
		}
		if got := checkMime(tc.s) == nil; got != tc.want {
			t.Errorf("checkMime(%q) accepts: %v, want %v", tc.s, got, tc.want)
		}
	}
}
