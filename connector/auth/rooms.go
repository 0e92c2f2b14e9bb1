package auth

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/roomstream/roomstream/schemas"
)

// RoomGrant is a token's `rooms` claim: the rooms its holder may join
// where the connector's room access policy is "claims". The claim is a
// list of strings, each a room id or a prefix followed by `*` ("team-*";
// a lone "*" is every room).
type RoomGrant struct {
	// Present: the token carries the claim. An empty list allows no room.
	Present bool
	// Invalid says why a present claim is malformed ("" when it is not).
	// A malformed claim allows no room; where rooms come from claims, it
	// makes the token invalid (the connector's decision: elsewhere the
	// claim means nothing and is not worth refusing a token for).
	Invalid  string
	exact    []string
	prefixes []string
}

// parseRooms reads a raw `rooms` claim (nil: absent).
func parseRooms(raw json.RawMessage) RoomGrant {
	if len(raw) == 0 {
		return RoomGrant{}
	}
	g := RoomGrant{Present: true}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil || list == nil {
		g.Invalid = "rooms must be a list of room ids (or prefixes ending in *)"
		return g
	}
	for i, e := range list {
		if p, ok := strings.CutSuffix(e, "*"); ok {
			if p != "" && !schemas.ValidID(p) {
				return RoomGrant{Present: true, Invalid: fmt.Sprintf("rooms[%d] is neither a room id nor a prefix* of one", i)}
			}
			g.prefixes = append(g.prefixes, p)
			continue
		}
		if !schemas.ValidID(e) {
			return RoomGrant{Present: true, Invalid: fmt.Sprintf("rooms[%d] is neither a room id nor a prefix* of one", i)}
		}
		g.exact = append(g.exact, e)
	}
	return g
}

// Allows reports whether the claim lets its holder join room: an entry
// names it, or is a prefix of it. An absent or malformed claim allows
// nothing.
func (g RoomGrant) Allows(room string) bool {
	if !g.Present || g.Invalid != "" {
		return false
	}
	for _, e := range g.exact {
		if e == room {
			return true
		}
	}
	for _, p := range g.prefixes {
		if strings.HasPrefix(room, p) {
			return true
		}
	}
	return false
}
