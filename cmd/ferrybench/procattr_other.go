//go:build !linux

package main

import "os/exec"

// setChildAttrs has no parent-death signal outside Linux; the bench stops
// its children itself.
func setChildAttrs(*exec.Cmd) {}
