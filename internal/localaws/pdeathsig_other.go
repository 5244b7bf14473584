//go:build !linux

package localaws

import "os/exec"

// setParentDeathSignal is a no-op where the kernel offers no parent-death
// signal; the child still exits when its stdin closes.
func setParentDeathSignal(*exec.Cmd) {}
