package workers

import "github.com/roomstream/roomstream/streams"

// roomStateKeys are the positions in streams.Keys.RoomKeys (0-based) of
// the keys that expire once a room is empty: all but the applied marker.
// They are STATE_KEYS of lifetime() in scripts/prelude.lua, less one
// (Lua counts KEYS from 1); TestRoomStateKeysMatchScripts holds the two
// equal.
var roomStateKeys = []int{0, 1, 2, 3, 4, 6}

// RoomStateKeys returns the keys of room that the room scripts give
// EMPTY_ROOM_TTL once it is empty, so that what replays the log (package
// workers/audit) expires a room exactly as the scripts do.
func RoomStateKeys(k streams.Keys, room string) []string {
	all := k.RoomKeys(room)
	out := make([]string, len(roomStateKeys))
	for i, j := range roomStateKeys {
		out[i] = all[j]
	}
	return out
}
