package workers

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestRoomStateKeysMatchScripts holds RoomStateKeys to the keys the
// scripts' lifetime() expires.
func TestRoomStateKeysMatchScripts(t *testing.T) {
	src, err := scriptFS.ReadFile("scripts/prelude.lua")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`local STATE_KEYS = \{([0-9, ]+)\}`).FindSubmatch(src)
	if m == nil {
		t.Fatal("STATE_KEYS not found in scripts/prelude.lua")
	}
	var lua []int
	for _, f := range strings.Split(string(m[1]), ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			t.Fatal(err)
		}
		lua = append(lua, n-1)
	}
	if len(lua) != len(roomStateKeys) {
		t.Fatalf("STATE_KEYS %v, roomStateKeys %v", lua, roomStateKeys)
	}
	for i := range lua {
		if lua[i] != roomStateKeys[i] {
			t.Fatalf("STATE_KEYS (0-based) %v, roomStateKeys %v", lua, roomStateKeys)
		}
	}
}
