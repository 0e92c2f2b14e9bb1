package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/roomstream/roomstream/infra/cli"
)

// The tests below read the documents as a reader would follow them:
// README.md and every docs/*.md. They fail on what would send a reader
// astray: a link to nothing, a variable, task or test that does not
// exist, an error code the protocol document does not explain.

type document struct {
	path string // from the module root, slash-separated
	text string
}

func documents(t *testing.T) []document {
	t.Helper()
	dir := root(t)
	paths, err := filepath.Glob(filepath.Join(dir, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	paths = append([]string{filepath.Join(dir, "README.md")}, paths...)
	var docs []document
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		docs = append(docs, document{filepath.ToSlash(rel), string(b)})
	}
	if len(docs) < 2 {
		t.Fatalf("no documents in docs/")
	}
	return docs
}

var (
	fence      = regexp.MustCompile("(?ms)^\\s*```.*?^\\s*```[^\\n]*$")
	codeSpan   = regexp.MustCompile("`[^`]*`")
	mdLinkRE   = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	headingRE  = regexp.MustCompile(`(?m)^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$`)
	schemeLink = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// prose is text with its code blocks and code spans blanked: what
// markdown renders as links and headings.
func prose(text string) string {
	blank := func(s string) string { return strings.Repeat(" ", len(s)) }
	return codeSpan.ReplaceAllStringFunc(fence.ReplaceAllStringFunc(text, blank), blank)
}

// anchors lists the anchors GitHub gives the headings of text.
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, m := range headingRE.FindAllStringSubmatch(fence.ReplaceAllString(text, ""), -1) {
		s := slug(strings.ReplaceAll(m[1], "`", ""))
		if n := seen[s]; n > 0 {
			out[s+"-"+strconv.Itoa(n)] = true
		} else {
			out[s] = true
		}
		seen[s]++
	}
	return out
}

// TestLinksResolve follows every relative link of the documents: the
// file or directory must exist, and a #fragment must name a heading of
// the markdown document it points into.
func TestLinksResolve(t *testing.T) {
	dir := root(t)
	docs := documents(t)
	byPath := map[string]string{}
	for _, d := range docs {
		byPath[d.path] = d.text
	}
	checked := 0
	for _, d := range docs {
		for _, m := range mdLinkRE.FindAllStringSubmatch(prose(d.text), -1) {
			target := m[1]
			if schemeLink.MatchString(target) {
				continue // a web address
			}
			checked++
			file, frag, _ := strings.Cut(target, "#")
			path := d.path
			if file != "" {
				path = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(d.path), file)))
				if strings.HasPrefix(path, "../") {
					t.Errorf("%s: link %q leaves the repository", d.path, target)
					continue
				}
				if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(path))); err != nil {
					t.Errorf("%s: link %q: no %s", d.path, target, path)
					continue
				}
			}
			if frag == "" {
				continue
			}
			if !strings.HasSuffix(path, ".md") {
				t.Errorf("%s: link %q: fragments are checked in markdown documents only", d.path, target)
				continue
			}
			text, ok := byPath[path]
			if !ok {
				b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(path)))
				if err != nil {
					t.Errorf("%s: link %q: %v", d.path, target, err)
					continue
				}
				text = string(b)
			}
			if !anchors(text)[frag] {
				t.Errorf("%s: link %q: %s has no heading with the anchor #%s", d.path, target, path, frag)
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d relative links found: is the link pattern still right?", checked)
	}
}

func TestAnchors(t *testing.T) {
	got := anchors("# Deploying roomstream\n## Auditing the log: roomstream replay\n```\n# not a heading\n```\n" +
		"## Asymmetric keys and JWKS\n## `ROOMSTREAM_X` and [a link](x.md)\n## Faults\n## Faults\n## Tokens (JWT)\n")
	want := []string{"deploying-roomstream", "auditing-the-log-roomstream-replay", "asymmetric-keys-and-jwks",
		"roomstream_x-and-a-link", "faults", "faults-1", "tokens-jwt"}
	for _, a := range want {
		if !got[a] {
			t.Errorf("no anchor %q in %v", a, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("anchors %v, want %v", got, want)
	}
}

// goFiles calls fn with the source of every Go file of the module.
func goFiles(t *testing.T, fn func(path string, src []byte)) {
	t.Helper()
	err := filepath.WalkDir(root(t), func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() && (e.Name() == ".git" || e.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !e.IsDir() && strings.HasSuffix(path, ".go") {
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			fn(path, src)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

var (
	variableRE = regexp.MustCompile(`ROOMSTREAM_[A-Z0-9_]+\*?`)
	getenvRE   = regexp.MustCompile(`os\.(?:Getenv|LookupEnv)\("(ROOMSTREAM_[A-Z0-9_]+)"\)`)
)

// TestVariablesExist checks every ROOMSTREAM_* variable the documents
// name: it is read from some config struct, or directly with os.Getenv
// (ROOMSTREAM_PPROF, and the variables of the test suites). A name ending
// in _* stands for the variables it starts.
func TestVariablesExist(t *testing.T) {
	known := map[string]bool{}
	for _, c := range cli.Configs() {
		vars, err := helpVariables(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vars {
			known[v.Key] = true
		}
	}
	goFiles(t, func(_ string, src []byte) {
		for _, m := range getenvRE.FindAllSubmatch(src, -1) {
			known[string(m[1])] = true
		}
	})
	for _, d := range documents(t) {
		for _, name := range variableRE.FindAllString(d.text, -1) {
			prefix, wildcard := strings.CutSuffix(name, "*")
			if !wildcard {
				name = strings.TrimRight(name, "_")
				if !known[name] {
					t.Errorf("%s names %s, which no config struct and no os.Getenv reads", d.path, name)
				}
				continue
			}
			found := false
			for k := range known {
				found = found || strings.HasPrefix(k, prefix)
			}
			if !found {
				t.Errorf("%s names %s, but no variable starts with %s", d.path, name, prefix)
			}
		}
	}
}

var (
	taskRefRE  = regexp.MustCompile(`go tool task ([a-z][a-z0-9:_-]*)`)
	taskDeclRE = regexp.MustCompile(`(?m)^  ([a-zA-Z0-9:_-]+):[ \t]*$`)
)

// TestTasksExist checks that every `go tool task NAME` of the documents
// is a task of Taskfile.yml.
func TestTasksExist(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root(t), "Taskfile.yml"))
	if err != nil {
		t.Fatal(err)
	}
	_, tasksPart, ok := strings.Cut(string(b), "\ntasks:\n")
	if !ok {
		t.Fatal("Taskfile.yml has no tasks: section")
	}
	tasks := map[string]bool{}
	for _, m := range taskDeclRE.FindAllStringSubmatch(tasksPart, -1) {
		tasks[m[1]] = true
	}
	for _, want := range []string{"test", "docs", "bench"} {
		if !tasks[want] {
			t.Fatalf("task %q not found in Taskfile.yml (found %v): is the pattern still right?", want, tasks)
		}
	}
	for _, d := range documents(t) {
		text := spaces.ReplaceAllString(d.text, " ")
		for _, m := range taskRefRE.FindAllStringSubmatch(text, -1) {
			if !tasks[m[1]] {
				t.Errorf("%s names `go tool task %s`, which Taskfile.yml does not define", d.path, m[1])
			}
		}
	}
}

var testNameRE = regexp.MustCompile(`\b(?:Test|Fuzz|Benchmark)[A-Z][A-Za-z0-9_]*`)

// TestTestsExist checks that every test, fuzz target and benchmark the
// documents name is a function of some _test.go file.
func TestTestsExist(t *testing.T) {
	funcs := map[string]bool{}
	goFiles(t, func(path string, src []byte) {
		if !strings.HasSuffix(path, "_test.go") {
			return
		}
		for _, m := range regexp.MustCompile(`(?m)^func ((?:Test|Fuzz|Benchmark)\w*)\(`).FindAllSubmatch(src, -1) {
			funcs[string(m[1])] = true
		}
	})
	for _, d := range documents(t) {
		for _, name := range testNameRE.FindAllString(d.text, -1) {
			if !funcs[name] {
				t.Errorf("%s names %s, which no _test.go file defines", d.path, name)
			}
		}
	}
}

// TestProtocolNamesEveryCode checks that docs/protocol.md explains every
// error code of schemas/errors.go.
func TestProtocolNamesEveryCode(t *testing.T) {
	dir := root(t)
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, "schemas", "errors.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || vs.Type == nil || len(vs.Values) != len(vs.Names) {
			return true
		}
		if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
			return true
		}
		for _, v := range vs.Values {
			if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				s, _ := strconv.Unquote(lit.Value)
				codes = append(codes, s)
			}
		}
		return true
	})
	if len(codes) < 10 {
		t.Fatalf("only %d codes found in schemas/errors.go: is the parser still right?", len(codes))
	}
	b, err := os.ReadFile(filepath.Join(dir, "docs", "protocol.md"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "| `") {
			code, _, _ := strings.Cut(strings.TrimPrefix(line, "| `"), "`")
			rows = append(rows, code)
		}
	}
	for _, c := range codes {
		if !slices.Contains(rows, c) {
			t.Errorf("error code %q of schemas/errors.go has no row in docs/protocol.md's code table", c)
		}
	}
}
