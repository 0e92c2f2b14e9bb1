package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/roomstream/roomstream/infra/cli"
	"github.com/roomstream/roomstream/streams"
)

func root(t *testing.T) string {
	t.Helper()
	dir, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestGeneratedDocsUpToDate fails while a committed generated document
// differs from what the generator makes of the code today.
func TestGeneratedDocsUpToDate(t *testing.T) {
	dir := root(t)
	docs, err := generated(dir)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range docs {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(path)))
		if err != nil {
			t.Errorf("%v: run `go tool task docs` and commit the result", err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what infra/docgen generates: run `go tool task docs` and commit the result\n%s",
				path, "(-generated +committed)\n"+cmp.Diff(strings.Split(string(want), "\n"), strings.Split(string(got), "\n")))
		}
	}
}

// helpArgs are the arguments that make each command print its -h
// listing; a command with subcommands needs one of them.
var helpArgs = map[string][]string{
	"deadletters": {"deadletters", "list", "-h"},
	"replay":      {"replay", "timeline", "-h"},
	"rooms":       {"rooms", "list", "-h"},
	"users":       {"users", "show", "-h"},
}

// TestConfigsMatchHelp holds cli.Configs, from which configuration.md is
// made, to what the built binary's `roomstream <command> -h` prints:
// every command listed, and for each the same variables, defaults and
// descriptions in the same order.
func TestConfigsMatchHelp(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "roomstream")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = root(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("roomstream %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	listed := map[string]bool{}
	for _, c := range cli.Configs() {
		listed[c.Name] = true
	}
	commands := regexp.MustCompile(`(?m)^  ([a-z]+) `).FindAllStringSubmatch(run("-h"), -1)
	if len(commands) == 0 {
		t.Fatal("roomstream -h lists no commands")
	}
	for _, m := range commands {
		if !listed[m[1]] {
			t.Errorf("roomstream %s is not in cli.Configs: add the structs it reads from the environment", m[1])
		}
	}

	for _, c := range cli.Configs() {
		args, ok := helpArgs[c.Name]
		if !ok {
			args = []string{c.Name, "-h"}
		}
		got := parseHelpEnv(t, run(args...))
		vars, err := helpVariables(c)
		if err != nil {
			t.Fatal(err)
		}
		want := [][3]string{}
		for _, v := range vars {
			want = append(want, [3]string{v.Key, v.Default, v.Desc})
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("roomstream %s: cli.Configs differs from what -h lists (-Configs +help):\n%s", strings.Join(args, " "), diff)
		}
	}
}

// parseHelpEnv reads the Environment table of a -h listing by the columns
// of its header line.
func parseHelpEnv(t *testing.T, help string) [][3]string {
	t.Helper()
	_, env, ok := strings.Cut(help, "Environment:\n")
	if !ok {
		return [][3]string{}
	}
	lines := strings.Split(strings.TrimRight(env, "\n"), "\n")
	header := lines[0]
	defCol, descCol := strings.Index(header, "DEFAULT"), strings.Index(header, "DESCRIPTION")
	if !strings.Contains(header, "VARIABLE") || defCol < 0 || descCol < defCol {
		t.Fatalf("unexpected Environment header %q", header)
	}
	out := [][3]string{}
	for _, line := range lines[1:] {
		line += strings.Repeat(" ", max(0, descCol-len(line)))
		out = append(out, [3]string{strings.TrimSpace(line[:defCol]), strings.TrimSpace(line[defCol:descCol]), strings.TrimSpace(line[descCol:])})
	}
	return out
}

// TestKeysTableNamesEveryKey holds the key table of streams.Keys, from
// which redis-keys.md is made, to the keys its methods build: every key
// a method returns matches a row, and every row matches some key.
func TestKeysTableNamesEveryKey(t *testing.T) {
	rows, err := keyTable(filepath.Join(root(t), "streams", "keys.go"))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{} // key -> method that built it
	k := reflect.ValueOf(streams.NewKeys(""))
	for i := range k.NumMethod() {
		m, name := k.Method(i), k.Type().Method(i).Name
		var args []reflect.Value
		for j := range m.Type().NumIn() {
			switch in := m.Type().In(j); in.Kind() {
			case reflect.String:
				args = append(args, reflect.ValueOf("ID"))
			case reflect.Int:
				args = append(args, reflect.ValueOf(7))
			default:
				t.Fatalf("Keys.%s takes a %s: teach this test a sample of it", name, in)
			}
		}
		if m.Type().NumOut() != 1 {
			t.Fatalf("Keys.%s returns %d values", name, m.Type().NumOut())
		}
		switch out := m.Call(args)[0]; v := out.Interface().(type) {
		case string:
			if v != "" { // Prefix of an empty prefix
				keys[v] = name
			}
		case []string:
			for _, key := range v {
				keys[key] = name
			}
		default:
			t.Fatalf("Keys.%s returns a %s", name, out.Type())
		}
	}
	if len(keys) < 20 {
		t.Fatalf("only %d keys from the methods of streams.Keys", len(keys))
	}
	var patterns []*regexp.Regexp
	for _, r := range rows {
		patterns = append(patterns, r.patterns()...)
	}
	used := map[*regexp.Regexp]bool{}
	for key, method := range keys {
		found := false
		for _, p := range patterns {
			if p.MatchString(key) {
				found, used[p] = true, true
			}
		}
		if !found {
			t.Errorf("Keys.%s builds %q, which no row of the key table in streams/keys.go names", method, key)
		}
	}
	for _, p := range patterns {
		if !used[p] {
			t.Errorf("the key table in streams/keys.go names %s, which no method of streams.Keys builds", p)
		}
	}
}

func TestParseKeyRow(t *testing.T) {
	for line, want := range map[string]keyRow{
		"session:{sessionId}        hash    24 h":                  {[]string{"session:{sessionId}"}, "hash", "24 h"},
		"in:{p}:lease, in:{p}:epoch string  lease TTL / none":      {[]string{"in:{p}:lease", "in:{p}:epoch"}, "string", "lease TTL / none"},
		"{janitor}:lease, :epoch    string  lease":                 {[]string{"{janitor}:lease", "{janitor}:epoch"}, "string", "lease"},
		"replay:<run>:<any key>     any     scratch copy":          {[]string{"replay:<run>:<any key>"}, "any", "scratch copy"},
		"connector:{connectorId}:sockets set sockets hosted by it": {[]string{"connector:{connectorId}:sockets"}, "set", "sockets hosted by it"},
	} {
		got, err := parseKeyRow(line)
		if err != nil {
			t.Errorf("%q: %v", line, err)
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%q (-want +got):\n%s", line, diff)
		}
	}
	if _, err := parseKeyRow("session:{sessionId} 24 h"); err == nil {
		t.Error("a row without a type parsed")
	}
}
