//go:build linux

package bench

import "syscall"

// childAttrs makes a child get SIGTERM if the bench dies, so Usher stops its game servers
// and nginx stops too.
func childAttrs() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM} }
