package dev

import "syscall"

// childAttrs makes the kernel SIGKILL a replica when regent dev dies, and
// puts it in its own process group so that a Ctrl-C reaches it only
// through regent dev's orderly stop.
func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}
