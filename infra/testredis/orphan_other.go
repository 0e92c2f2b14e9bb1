//go:build !linux

package testredis

import "os/exec"

// KillWithParent is a no-op outside Linux: there, a test binary killed by
// its timeout may leave its servers running.
func KillWithParent(cmd *exec.Cmd) {}
