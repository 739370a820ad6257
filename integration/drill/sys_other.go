//go:build !linux

package drill

import "syscall"

func procAttrs() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
