package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMutationsMatchTheCode fails when the list has gone stale: a snippet
// that no longer occurs exactly once in its file, or a test that its
// package no longer declares. The full check (go run ./e2e/mutate) takes
// minutes; this one reads files only, so every test run catches a rename.
func TestMutationsMatchTheCode(t *testing.T) {
	root := moduleRoot(t)
	seen := map[string]bool{}
	for _, m := range mutations {
		if seen[m.Name] {
			t.Errorf("two mutations named %s", m.Name)
		}
		seen[m.Name] = true
		for _, p := range stale(root, m) {
			t.Errorf("mutation %s (%s): %s", m.Name, m.File, p)
		}
	}
}

// TestDocsListEveryMutation fails while docs/testing.md's table of
// mutations differs from the list.
func TestDocsListEveryMutation(t *testing.T) {
	path := filepath.Join(moduleRoot(t), "docs", "testing.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := withTable(doc)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != string(doc) {
		t.Errorf("docs/testing.md's table of mutations is stale: run go tool task docs")
	}
}

// TestStaleFindsWhatMoved holds stale to its word on a module made for
// the purpose: each way a mutation can go stale is reported.
func TestStaleFindsWhatMoved(t *testing.T) {
	root := t.TempDir()
	write := func(rel, src string) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("p/code.go", "package p\n\nfunc f() int { return 1 }\nfunc g() int { return 2 }\nfunc h() int { return 2 }\n")
	write("p/code_test.go", "package p\n\nfunc TestF(t *testing.T) {}\n\n// TestGone( is only mentioned\n")
	write("q/q.go", "package q\n")
	for _, tc := range []struct {
		name string
		m    mutation
		want string // a substring of the one problem; "" for none
	}{
		{"current", mutation{File: "p/code.go", From: "return 1", To: "return 0", Checks: []check{{"./p/", []string{"TestF"}}}}, ""},
		{"every test", mutation{File: "p/code.go", From: "return 1", To: "return 0", Checks: []check{{"./p/", nil}}}, ""},
		{"snippet gone", mutation{File: "p/code.go", From: "return 3", To: "return 0", Checks: []check{{"./p/", []string{"TestF"}}}}, "occurs 0 times"},
		{"snippet twice", mutation{File: "p/code.go", From: "return 2", To: "return 0", Checks: []check{{"./p/", []string{"TestF"}}}}, "occurs 2 times"},
		{"file gone", mutation{File: "p/old.go", From: "return 1", To: "return 0", Checks: []check{{"./p/", []string{"TestF"}}}}, "no such file"},
		{"test gone", mutation{File: "p/code.go", From: "return 1", To: "return 0", Checks: []check{{"./p/", []string{"TestGone"}}}}, "declares no func TestGone("},
		{"package without tests", mutation{File: "p/code.go", From: "return 1", To: "return 0", Checks: []check{{"./q/", nil}}}, "./q/ has no test"},
		{"no check", mutation{File: "p/code.go", From: "return 1", To: "return 0"}, "no test to catch it"},
		{"no change", mutation{File: "p/code.go", From: "return 1", To: "return 1", Checks: []check{{"./p/", []string{"TestF"}}}}, "the snippet itself"},
	} {
		got := stale(root, tc.m)
		switch {
		case tc.want == "" && len(got) != 0:
			t.Errorf("%s: %q, want no problem", tc.name, got)
		case tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)):
			t.Errorf("%s: %q, want one problem with %q", tc.name, got, tc.want)
		}
	}
}

// moduleRoot is the directory of go.mod above the test's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}
