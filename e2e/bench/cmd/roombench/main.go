// Command roombench is roomstream's load generator and benchmark scenarios
// (package e2e/bench). It is test tooling and ships apart from the server:
// the roomstream binary does not link it.
//
//	roombench seed|max|conns|peer|all|run [flags]
//
// The scenarios that start their own servers run the roomstream binary
// (`roomstream connector|worker`): by default the one beside this program
// (bin/roomstream when both are built into bin/, as `go tool task bench`
// does), else roomstream on $PATH; --server names another.
package main

import (
	"fmt"
	"os"

	"github.com/roomstream/roomstream/e2e/bench"
)

func main() {
	if err := bench.Main(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "roombench: %v\n", err)
		os.Exit(1)
	}
}
