package main

import (
	"os/exec"
	"syscall"
)

// setChildAttrs makes the kernel kill the child when the bench dies, so an
// interrupted run leaves no worker, raw loop or redis-server behind.
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
