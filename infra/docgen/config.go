package main

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/roomstream/roomstream/infra/cli"
)

const envPrefix = "ROOMSTREAM_"

// variable is one environment variable as `roomstream <command> -h`
// lists it.
type variable struct {
	Key, Default, Desc string
	// owner is the struct that declares the field.
	owner reflect.Type
}

// variables lists the variables of the struct spec points to in
// envconfig's order: its fields in turn, those of an anonymous embedded
// struct in its place.
func variables(spec any) ([]variable, error) {
	t := reflect.TypeOf(spec)
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("%T is not a pointer to a struct", spec)
	}
	return structVariables(t.Elem())
}

func structVariables(t reflect.Type) ([]variable, error) {
	var vars []variable
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Tag.Get("ignored") == "true" {
			continue // envconfig cannot set it, so does not read it
		}
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			inner, err := structVariables(f.Type)
			if err != nil {
				return nil, err
			}
			vars = append(vars, inner...)
			continue
		}
		name, ok := f.Tag.Lookup("envconfig")
		if !ok || name == "" {
			// envconfig would fall back to the field's name (and nest
			// struct fields under it); roomstream names every variable.
			return nil, fmt.Errorf("%s.%s has no envconfig tag", t, f.Name)
		}
		vars = append(vars, variable{
			Key:     envPrefix + strings.ToUpper(name),
			Default: f.Tag.Get("default"),
			Desc:    f.Tag.Get("desc"),
			owner:   t,
		})
	}
	return vars, nil
}

// helpVariables lists a command's variables as its -h does: every spec
// in turn, a variable already listed by an earlier spec left out.
func helpVariables(c cli.CommandConfig) ([]variable, error) {
	var out []variable
	seen := map[string]bool{}
	for _, spec := range c.Specs {
		vars, err := variables(spec)
		if err != nil {
			return nil, fmt.Errorf("roomstream %s: %w", c.Name, err)
		}
		for _, v := range vars {
			if !seen[v.Key] {
				seen[v.Key] = true
				out = append(out, v)
			}
		}
	}
	return out, nil
}

// sharedTitles names the sections of structs that several commands read.
// A struct missing here gets its Go name as a title.
var sharedTitles = map[string]string{
	"streams.Config":     "Redis and streams",
	"cli.logConfig":      "Logging",
	"workers.Limits":     "Room limits",
	"workers.FeedConfig": "Applied-events feed",
	"auth.Config":        "Tokens (JWT)",
	"api.Config":         "Server API",
}

// section is one heading of configuration.md: a command (or commands
// reading exactly the same structs), or a struct several commands share.
type section struct {
	title    string
	commands []string // the commands of a command section
	note     string
	vars     []variable     // the variables it declares itself
	links    []*section     // the other sections its commands also read
	types    []reflect.Type // every struct its commands read, in -h order
	readBy   []string       // for a shared section: the commands reading it
	isShared bool
}

// sections groups the variables of every command so that each struct's
// variables are listed once: under the command whose first spec it is,
// or, when several commands read it and it is embedded (or no command
// reads it first), under a shared section of its own; a struct only one
// command reads goes under that command.
func sections(cmds []cli.CommandConfig) ([]*section, error) {
	var cmdSecs []*section
	bySpecs := map[string]*section{}
	varsOf := map[reflect.Type][]variable{}
	users := map[reflect.Type][]*section{} // command sections reading each struct
	embedded := map[reflect.Type]bool{}
	primary := map[reflect.Type]*section{}
	var order []reflect.Type

	for _, c := range cmds {
		key := ""
		for _, s := range c.Specs {
			key += reflect.TypeOf(s).String() + ","
		}
		if s := bySpecs[key]; s != nil {
			s.commands = append(s.commands, c.Name)
			continue
		}
		s := &section{commands: []string{c.Name}, note: c.Note}
		bySpecs[key] = s
		cmdSecs = append(cmdSecs, s)
		for i, spec := range c.Specs {
			t := reflect.TypeOf(spec).Elem()
			if i == 0 && primary[t] == nil {
				primary[t] = s
			}
			walkStructs(t, false, func(t reflect.Type, isEmbedded bool) {
				if isEmbedded {
					embedded[t] = true
				}
				if !slices.Contains(s.types, t) {
					s.types = append(s.types, t)
					users[t] = append(users[t], s)
				}
				if !slices.Contains(order, t) {
					order = append(order, t)
				}
			})
		}
	}
	for _, t := range order {
		vars, err := structVariables(t)
		if err != nil {
			return nil, err
		}
		for _, v := range vars {
			if v.owner == t {
				varsOf[t] = append(varsOf[t], v)
			}
		}
	}

	owner := map[reflect.Type]*section{}
	var shared []*section
	for _, t := range order {
		switch {
		case len(users[t]) > 1 && (embedded[t] || primary[t] == nil):
			title, ok := sharedTitles[t.String()]
			if !ok {
				title = t.String()
			}
			s := &section{title: title, isShared: true}
			shared = append(shared, s)
			owner[t] = s
		case primary[t] != nil:
			owner[t] = primary[t]
		default:
			owner[t] = users[t][0]
		}
		owner[t].vars = append(owner[t].vars, varsOf[t]...)
	}
	for _, s := range cmdSecs {
		s.title = "roomstream " + strings.Join(s.commands, ", roomstream ")
		for _, t := range s.types {
			if o := owner[t]; o != s && !slices.Contains(s.links, o) {
				s.links = append(s.links, o)
			}
		}
	}
	for _, s := range shared {
		for _, c := range cmdSecs {
			if slices.Contains(c.links, s) {
				s.readBy = append(s.readBy, c.commands...)
			}
		}
	}
	return append(cmdSecs, shared...), nil
}

// walkStructs calls fn with t and every struct embedded in it, depth
// first, in field order.
func walkStructs(t reflect.Type, embedded bool, fn func(t reflect.Type, embedded bool)) {
	fn(t, embedded)
	for i := range t.NumField() {
		if f := t.Field(i); f.IsExported() && f.Anonymous && f.Type.Kind() == reflect.Struct {
			walkStructs(f.Type, true, fn)
		}
	}
}

// configurationDoc renders docs/configuration.md.
func configurationDoc() ([]byte, error) {
	secs, err := sections(cli.Configs())
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(`# Configuration

<!-- Generated by go tool task docs (go run ./infra/docgen) from the envconfig
tags of the structs each command reads (infra/cli/configs.go). Edit the tags,
not this file. -->

Every setting is an environment variable. ` + "`roomstream <command> -h`" + ` lists the
same variables, defaults and descriptions as this page. Durations are Go
durations (` + "`500ms`, `2m`, `168h`" + `), lists are comma-separated, and a value
that does not parse, or is out of range, stops the process at start with a
message naming the variable. Where a deployment runs several processes, give
them the same Redis and streams settings.

| command | reads |
|---|---|
`)
	for _, s := range secs {
		if s.isShared {
			continue
		}
		var reads []string
		reads = append(reads, mdLink(s.title))
		for _, l := range s.links {
			reads = append(reads, mdLink(l.title))
		}
		var names []string
		for _, c := range s.commands {
			names = append(names, "`roomstream "+c+"`")
		}
		fmt.Fprintf(&b, "| %s | %s |\n", strings.Join(names, ", "), strings.Join(reads, ", "))
	}
	for _, s := range secs {
		fmt.Fprintf(&b, "\n## %s\n\n", s.title)
		if s.isShared {
			fmt.Fprintf(&b, "Read by %s.\n\n", commandList(s.readBy))
		}
		if s.note != "" {
			b.WriteString(wrap(s.note, 80) + "\n\n")
		}
		if len(s.links) > 0 {
			var ls []string
			for _, l := range s.links {
				ls = append(ls, mdLink(l.title))
			}
			also := "Also reads"
			if len(s.vars) == 0 {
				also = "Reads"
			}
			fmt.Fprintf(&b, "%s: %s.\n", also, strings.Join(ls, ", "))
			if len(s.vars) > 0 {
				b.WriteString("\n")
			}
		}
		if len(s.vars) == 0 {
			continue
		}
		b.WriteString("| variable | default | description |\n|---|---|---|\n")
		for _, v := range s.vars {
			def := ""
			if v.Default != "" {
				def = "`" + v.Default + "`"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Key, def, cell(v.Desc))
		}
	}
	return b.Bytes(), nil
}

func commandList(names []string) string {
	var out []string
	for _, n := range names {
		out = append(out, "`"+n+"`")
	}
	return strings.Join(out, ", ")
}

// mdLink links to the heading title of the same document.
func mdLink(title string) string {
	return "[" + title + "](#" + slug(title) + ")"
}
