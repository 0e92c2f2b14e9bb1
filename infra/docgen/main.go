// Command docgen writes the documents that are generated from the code, so
// that they cannot drift from it: docs/configuration.md from the envconfig
// tags of every command's config structs (infra/cli.Configs), and
// docs/redis-keys.md from the key table in the doc comment of streams.Keys.
// Run it from anywhere in the module:
//
//	go run ./infra/docgen      # or: go tool task docs
//
// Its tests fail while a committed document differs from what it
// generates, and also check the hand-written documents: links, variable
// names, task names and error codes.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	root, err := moduleRoot()
	if err == nil {
		err = write(root)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "docgen:", err)
		os.Exit(1)
	}
}

// generated returns every generated document by its path from the module
// root.
func generated(root string) (map[string][]byte, error) {
	cfg, err := configurationDoc()
	if err != nil {
		return nil, err
	}
	keys, err := redisKeysDoc(filepath.Join(root, "streams", "keys.go"))
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		"docs/configuration.md": cfg,
		"docs/redis-keys.md":    keys,
	}, nil
}

// write writes the documents that changed and names them.
func write(root string) error {
	docs, err := generated(root)
	if err != nil {
		return err
	}
	for path, data := range docs {
		full := filepath.Join(root, filepath.FromSlash(path))
		if old, err := os.ReadFile(full); err == nil && bytes.Equal(old, data) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, data, 0o644); err != nil {
			return err
		}
		fmt.Println("wrote", path)
	}
	return nil
}

// moduleRoot is the nearest directory at or above the working directory
// holding go.mod: `go run` and `go test` start in different ones.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod at or above the working directory")
		}
		dir = parent
	}
}
