package schemas

import (
	"strings"
	"testing"
)

func TestCustomEventNames(t *testing.T) {
	for name, want := range map[string]bool{
		"app:comment-added": true,
		"app:a":             true,
		"app:ns/x.y_z:w":    true,
		"app:":              false,
		"comment-added":     false,
		"file-added":        false,
		"app:a b":           false,
		"app:é":             false,
		"app:$x":            false,
		"APP:x":             false,
		"app:" + strings.Repeat("x", MaxEventNameLen-4): true,
		"app:" + strings.Repeat("x", MaxEventNameLen-3): false,
	} {
		if got := ValidCustomEvent(name); got != want {
			t.Errorf("ValidCustomEvent(%q) = %v, want %v", name, got, want)
		}
	}
	if MetricName("app:anything") != "app:*" || MetricName("file-added") != "file-added" {
		t.Error("custom events must share one metric label")
	}
	for _, c := range []string{CmdPublish, CmdRemoveMember, CmdOperatorUnlock} {
		if !IsInternal(c) || IsRoomEvent(c) {
			t.Errorf("%s must be internal: clients may not send it", c)
		}
	}
}
