//go:build !linux

package dev

import "syscall"

func childAttrs() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
