package drill

import "syscall"

// procAttrs: a replica dies with the test process (no orphans after a
// crashed test).
func procAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
