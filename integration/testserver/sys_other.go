//go:build !linux

package testserver

import "os/exec"

// setChildAttrs is a no-op where no parent-death signal exists; t.Cleanup
// still kills every child of a test that finishes normally.
func setChildAttrs(cmd *exec.Cmd) {}

// lockFile does not lock here: concurrent builders still produce a correct
// binary (each renames its own complete build into place), they only
// duplicate work.
func lockFile(path string) (unlock func(), err error) { return func() {}, nil }
