package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
)

// The table of mutations in docs/testing.md is written from the list, so
// that the list stays the one home of what each mutation breaks and which
// tests catch it (mutations_test.go fails while the document differs).
const (
	tableBegin = "<!-- mutations: written by go tool task docs from e2e/mutate/mutations.go -->\n"
	tableEnd   = "<!-- end of mutations -->\n"
)

// docTable is the Markdown table of every mutation.
func docTable() string {
	var b strings.Builder
	b.WriteString("| mutation | the guarantee it breaks | caught by (in this order) |\n|---|---|---|\n")
	for _, m := range mutations {
		var by []string
		for _, c := range m.Checks {
			pkg := "`" + strings.TrimSuffix(strings.TrimPrefix(c.Pkg, "./"), "/") + "`"
			if len(c.Tests) == 0 {
				by = append(by, "every test of "+pkg)
				continue
			}
			names := make([]string, len(c.Tests))
			for i, t := range c.Tests {
				names[i] = "`" + t + "`"
			}
			by = append(by, strings.Join(names, ", ")+" ("+pkg+")")
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", m.Name, strings.ReplaceAll(m.Guarantee, "|", `\|`), strings.Join(by, ", then "))
	}
	return b.String()
}

// withTable returns doc with the text between its table markers replaced
// by the current table.
func withTable(doc []byte) ([]byte, error) {
	i := bytes.Index(doc, []byte(tableBegin))
	j := bytes.Index(doc, []byte(tableEnd))
	if i < 0 || j < i {
		return nil, fmt.Errorf("the document has no %q ... %q markers", strings.TrimSpace(tableBegin), strings.TrimSpace(tableEnd))
	}
	var out bytes.Buffer
	out.Write(doc[:i+len(tableBegin)])
	out.WriteString(docTable())
	out.Write(doc[j:])
	return out.Bytes(), nil
}

// writeTable rewrites the table in the document at path.
func writeTable(path string) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := withTable(doc)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if bytes.Equal(out, doc) {
		return nil
	}
	return os.WriteFile(path, out, 0o644)
}
