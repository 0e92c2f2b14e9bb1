package workers

import (
	"context"
	"embed"

	"github.com/redis/go-redis/v9"
)

//go:embed scripts/*.lua
var scriptFS embed.FS

// roomScripts are the Lua scripts that change room state, each with the
// shared prelude in front (see scripts/prelude.lua for the calling
// convention).
type roomScripts struct {
	join, leave, move, lock, unlock, upload, publish, evict *redis.Script
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
		publish: mk("publish.lua"), evict: mk("evict.lua"),
	}
}

// load loads every room script into Redis (every master of a cluster).
func (s roomScripts) load(ctx context.Context, rdb redis.Scripter) error {
	for _, sc := range []*redis.Script{s.join, s.leave, s.move, s.lock, s.unlock, s.upload, s.publish, s.evict} {
		if err := sc.Load(ctx, rdb).Err(); err != nil {
			return err
		}
	}
	return nil
}
