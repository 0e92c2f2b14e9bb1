//go:build !unix

package main

import "os/exec"

// ownGroup: without process groups, cancelling kills go test only.
func ownGroup(cmd *exec.Cmd) {}
