package workers

import (
	"embed"

	"github.com/redis/go-redis/v9"
)

//go:embed scripts/*.lua
var scriptFS embed.FS

// roomScripts are the Lua scripts that change room state, each with the
// shared prelude in front (see scripts/prelude.lua for the calling
// convention).
type roomScripts struct {
	join, leave, move, lock, unlock, upload *redis.Script
}

func loadScripts() roomScripts {
	read := func(name string) string {
		b, err := scriptFS.ReadFile("scripts/" + name)
		if err != nil {
			panic("workers: missing embedded script " + name) // build-time invariant
		}
		return string(b)
	}
	prelude := read("prelude.lua")
	mk := func(name string) *redis.Script { return redis.NewScript(prelude + "\n" + read(name)) }
	return roomScripts{
		join: mk("join.lua"), leave: mk("leave.lua"), move: mk("move.lua"),
		lock: mk("lock.lua"), unlock: mk("unlock.lua"), upload: mk("upload.lua"),
	}
}
