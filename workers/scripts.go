package workers

import (
	"context"
	"crypto/sha1"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

//go:embed scripts/*.lua
var scriptFS embed.FS

// roomScript is one room script (see scripts/prelude.lua for the calling
// convention): a function of the room library and, for a Redis without
// functions, the same code as a script.
type roomScript struct {
	fn   string        // function name in the library
	eval *redis.Script // prelude and body, for EVALSHA
}

// roomScripts are the Lua scripts that change room state.
//
// Where Redis has functions (7.0 and later) they are one library whose
// prelude is run once, at FUNCTION LOAD, and called with FCALL: sent as
// scripts, every call first defines the prelude's functions again, a
// large share of the time Redis spends on a small event such as upload
// progress (BenchmarkApplyProgress compares the two). The embedded Redis of
// roomstream dev (and Redis before 7) has no functions and gets the
// scripts, with the same code and results.
//
// The library and its functions are named after a digest of their code,
// as scripts are: workers of two versions (a rolling upgrade) each call
// their own code, and loading is idempotent.
type roomScripts struct {
	join, leave, move, lock, unlock, upload, publish, evict *roomScript
	library                                                 string       // FUNCTION LOAD source
	useFCall                                                *atomic.Bool // the library is loaded: calls use FCALL
	noLib                                                   bool         // scripts even where Redis has functions (tests)
}

func loadScripts() roomScripts {
	read := func(name string) string {
		b, err := scriptFS.ReadFile("scripts/" + name + ".lua")
		if err != nil {
			panic("workers: missing embedded script " + name) // build-time invariant
		}
		return string(b)
	}
	prelude := read("prelude")
	names := []string{"join", "leave", "move", "lock", "unlock", "upload", "publish", "evict"}
	bodies := make([]string, len(names))
	sum := sha1.New()
	sum.Write([]byte(prelude))
	for i, n := range names {
		bodies[i] = read(n)
		sum.Write([]byte(bodies[i]))
	}
	tag := hex.EncodeToString(sum.Sum(nil))[:12]
	var lib strings.Builder
	fmt.Fprintf(&lib, "#!lua name=roomstream_%s\nlocal KEYS, ARGV\n%s\n", tag, prelude)
	made := map[string]*roomScript{}
	for i, n := range names {
		sc := &roomScript{
			fn:   "roomstream_" + tag + "_" + n,
			eval: redis.NewScript("local KEYS, ARGV = KEYS, ARGV\n" + prelude + "\ninit(KEYS, ARGV)\n" + bodies[i]),
		}
		fmt.Fprintf(&lib, "local function run_%s()\n%s\nend\nredis.register_function('%s', function(keys, argv)\n  init(keys, argv)\n  return run_%s()\nend)\n",
			n, bodies[i], sc.fn, n)
		made[n] = sc
	}
	return roomScripts{
		join: made["join"], leave: made["leave"], move: made["move"], lock: made["lock"],
		unlock: made["unlock"], upload: made["upload"], publish: made["publish"], evict: made["evict"],
		library: lib.String(), useFCall: new(atomic.Bool),
	}
}

func (s roomScripts) all() []*roomScript {
	return []*roomScript{s.join, s.leave, s.move, s.lock, s.unlock, s.upload, s.publish, s.evict}
}

// run queues a call of sc on c (a client or a pipeline). Until load has
// run, or where Redis has no functions, it is an EVALSHA, which fails
// with NOSCRIPT until the scripts are loaded (see missing).
func (s roomScripts) run(ctx context.Context, c redis.Cmdable, sc *roomScript, keys []string, args ...any) *redis.Cmd {
	if s.useFCall.Load() {
		return c.FCall(ctx, sc.fn, keys, args...)
	}
	return sc.eval.EvalSha(ctx, c, keys, args...)
}

// call runs sc on rdb, loading the code first when Redis lacks it.
func (s roomScripts) call(ctx context.Context, rdb redis.UniversalClient, sc *roomScript, keys []string, args ...any) *redis.Cmd {
	cmd := s.run(ctx, rdb, sc, keys, args...)
	if missing(cmd.Err()) {
		if err := s.load(ctx, rdb); err != nil {
			return cmd
		}
		cmd = s.run(ctx, rdb, sc, keys, args...)
	}
	return cmd
}

// missing tells the error of a call Redis could not run because it does
// not have the code (first use, or a Redis restarted without its data):
// load and call again.
func missing(err error) bool {
	return err != nil && (strings.HasPrefix(err.Error(), "NOSCRIPT") || strings.Contains(err.Error(), "Function not found"))
}

// load loads the room library into Redis (every master of a cluster), or
// the scripts where Redis has no functions.
func (s roomScripts) load(ctx context.Context, rdb redis.UniversalClient) error {
	err := s.loadLibrary(ctx, rdb)
	if err == nil {
		s.useFCall.Store(true)
		return nil
	}
	if msg := strings.ToLower(err.Error()); !strings.Contains(msg, "unknown command") && !strings.Contains(msg, "unknown subcommand") {
		return fmt.Errorf("load the room function library: %w", err)
	}
	s.useFCall.Store(false)
	for _, sc := range s.all() {
		if err := sc.eval.Load(ctx, rdb).Err(); err != nil {
			return err
		}
	}
	return nil
}

func (s roomScripts) loadLibrary(ctx context.Context, rdb redis.UniversalClient) error {
	loadLib := func(ctx context.Context, c *redis.Client) error {
		return c.FunctionLoadReplace(ctx, s.library).Err()
	}
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		if !s.noLib {
			return c.ForEachMaster(ctx, loadLib)
		}
	case *redis.Client:
		if !s.noLib {
			return loadLib(ctx, c)
		}
	}
	return errors.New("unknown command: scripts, not functions, through this client")
}
