//go:build !unix

package local

import "os/exec"

// setProcessGroup does nothing where there are no process groups: only the process itself
// is stopped.
func setProcessGroup(*exec.Cmd) {}

func terminateGroup(p *process) { _ = p.cmd.Process.Kill() }

func killGroup(p *process) { _ = p.cmd.Process.Kill() }
