package workers

import (
	"sync"

	"github.com/roomstream/roomstream/streams"
)

// keyCache keeps the keys of rooms (streams.Keys.RoomKeys), which every
// entry of a room passes to its script: built once per room, not per
// entry. It starts afresh past maxViews rooms.
type keyCache struct {
	mu    sync.Mutex
	rooms map[string][]string
}

func (k *keyCache) get(keys streams.Keys, room string) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if ks, ok := k.rooms[room]; ok {
		return ks
	}
	if k.rooms == nil || len(k.rooms) >= maxViews {
		k.rooms = make(map[string][]string)
	}
	ks := keys.RoomKeys(room)
	k.rooms[room] = ks
	return ks
}
