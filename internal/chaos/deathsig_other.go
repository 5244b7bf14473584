//go:build !linux

package chaos

import "os/exec"

// setDeathSignal is a no-op where the kernel offers no parent-death signal;
// Run still kills every child it started before returning.
func setDeathSignal(*exec.Cmd) {}
