//go:build linux

package testredis

import (
	"os/exec"
	"syscall"
)

// KillWithParent makes cmd receive SIGKILL when the test process dies, so
// that a test binary killed by its timeout leaves no server behind.
func KillWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
