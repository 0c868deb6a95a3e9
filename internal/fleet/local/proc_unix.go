//go:build unix

package local

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts the process in a group of its own, so signals reach its children
// too (a `go run` wrapper and the program it built, a shell script and its game).
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

func terminateGroup(p *process) { _ = syscall.Kill(-p.pid, syscall.SIGTERM) }

func killGroup(p *process) { _ = syscall.Kill(-p.pid, syscall.SIGKILL) }
