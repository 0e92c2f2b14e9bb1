package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// occurrences counts m's snippet in its file, under the module root.
func (m mutation) occurrences(root string) (int, error) {
	src, err := os.ReadFile(filepath.Join(root, m.File))
	if err != nil {
		return 0, err
	}
	return strings.Count(string(src), m.From), nil
}

// stale lists what in m no longer matches the code under root: a snippet
// that does not occur exactly once in its file, a named test that its
// package does not declare, a package without tests. It reads files and
// runs nothing, so the list can be checked in an instant.
func stale(root string, m mutation) []string {
	var out []string
	switch n, err := m.occurrences(root); {
	case err != nil:
		out = append(out, err.Error())
	case n != 1:
		out = append(out, fmt.Sprintf("the snippet occurs %d times in %s, want exactly once:\n%s", n, m.File, indent(m.From)))
	}
	if m.From == m.To {
		out = append(out, "the replacement is the snippet itself")
	}
	if len(m.Checks) == 0 {
		out = append(out, "no test to catch it")
	}
	for _, c := range m.Checks {
		src, err := testSources(root, c.Pkg)
		if err != nil {
			out = append(out, err.Error())
			continue
		}
		names := c.Tests
		if len(names) == 0 {
			if !regexp.MustCompile(`(?m)^func Test[A-Z]\w*\(`).MatchString(src) {
				out = append(out, fmt.Sprintf("%s has no test", c.Pkg))
			}
			continue
		}
		for _, name := range names {
			if !regexp.MustCompile(`(?m)^func ` + regexp.QuoteMeta(name) + `\(`).MatchString(src) {
				out = append(out, fmt.Sprintf("%s declares no func %s(", c.Pkg, name))
			}
		}
	}
	return out
}

// testSources returns the _test.go files of the package in directory
// pkg (as go test names it, "./workers/"), one after the other.
func testSources(root, pkg string) (string, error) {
	files, err := filepath.Glob(filepath.Join(root, pkg, "*_test.go"))
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		b.Write(src)
		b.WriteByte('\n')
	}
	return b.String(), nil
}
