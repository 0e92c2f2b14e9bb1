package cli

import (
	"github.com/roomstream/roomstream/connector"
	"github.com/roomstream/roomstream/connector/api"
	"github.com/roomstream/roomstream/connector/demo"
	"github.com/roomstream/roomstream/streams"
	"github.com/roomstream/roomstream/workers"
	"github.com/roomstream/roomstream/workers/hooks"
)

// CommandConfig is what one command reads from the environment.
type CommandConfig struct {
	// Name is the command as typed after `roomstream`.
	Name string
	// Specs point to zero values of the structs the command hands to
	// envconfig, in the order its -h lists them.
	Specs []any
	// Note says what the command does with its variables beyond what
	// their tags say (defaults changed at run time, required ones).
	Note string
}

// Configs lists the environment of every command, so that
// docs/configuration.md can be generated from the same structs the
// commands read (infra/docgen). Its test compares each entry with what
// `roomstream <command> -h` prints, so a command that starts reading
// another struct fails it until this list follows.
func Configs() []CommandConfig {
	return []CommandConfig{
		{Name: "connector", Specs: []any{&connector.Config{}, &api.Config{}, &logConfig{}},
			Note: "`ROOMSTREAM_REDIS_URL` is required, and exactly one of `ROOMSTREAM_JWT_SECRET`, " +
				"`ROOMSTREAM_JWT_PUBLIC_KEY_FILE` and `ROOMSTREAM_JWKS_URL`. `GOGC`, when set, wins over " +
				"`ROOMSTREAM_GC_PERCENT`. `ROOMSTREAM_PPROF=true` (read directly, not listed by -h) also " +
				"serves /debug/pprof/ on the admin address."},
		{Name: "worker", Specs: []any{&workers.Config{}, &logConfig{}},
			Note: "`ROOMSTREAM_REDIS_URL` is required. `ROOMSTREAM_PPROF=true` (read directly, not listed by -h) " +
				"also serves /debug/pprof/ on the worker's address."},
		{Name: "hooks", Specs: []any{&hooks.Config{}, &logConfig{}},
			Note: "`ROOMSTREAM_REDIS_URL`, `ROOMSTREAM_WEBHOOK_URL` and `ROOMSTREAM_WEBHOOK_SECRET` are required; the workers " +
				"must write the feed (`ROOMSTREAM_EVENTS_FEED`). `ROOMSTREAM_PPROF=true` (read directly, not listed by -h) also " +
				"serves /debug/pprof/ on the hooks address."},
		{Name: "dev", Specs: []any{&connector.Config{}, &api.Config{}, &workers.Config{}, &demo.Config{}, &logConfig{}},
			Note: "dev differs from the connector's and the worker's defaults: it runs an embedded Redis when `ROOMSTREAM_REDIS_URL` " +
				"is empty, makes up an HS256 secret when `ROOMSTREAM_JWT_SECRET` is empty (and refuses " +
				"public keys: its demo mints tokens), listens on 127.0.0.1:8080 unless `ROOMSTREAM_HTTP_ADDR` " +
				"is set, and logs at warn unless `ROOMSTREAM_LOG_LEVEL` is set. Where the connector and the " +
				"worker both read a variable, one value serves both."},
		{Name: "token", Specs: []any{&tokenEnv{}}},
		{Name: "deadletters", Specs: []any{&streams.Config{}}},
		{Name: "replay", Specs: []any{&replayConfig{}},
			Note: "Give replay the workers' values: it applies the log again with their rules."},
		{Name: "rooms", Specs: []any{&opsConfig{}}},
		{Name: "users", Specs: []any{&opsConfig{}}},
	}
}

// tokenEnv is the environment of `roomstream token`, which declares the
// same struct inline; the comparison with `roomstream token -h` keeps the
// two equal.
type tokenEnv struct {
	JWTSecret   string `envconfig:"JWT_SECRET" desc:"HS256 secret (required unless -key is given)"`
	JWTIssuer   string `envconfig:"JWT_ISSUER" desc:"iss claim of the token (empty = none)"`
	JWTAudience string `envconfig:"JWT_AUDIENCE" desc:"aud claim of the token (empty = none)"`
}
