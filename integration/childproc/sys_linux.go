package childproc

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// sysProcAttr makes the kernel SIGKILL the child when the thread that
// started it dies, so that a program that crashes or is killed leaves no
// child behind, and gives the child a process group of its own if asked.
func sysProcAttr(ownGroup bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: ownGroup}
}

// stopped reports whether every live thread of process pid is stopped, as
// SIGSTOP leaves it once the kernel has stopped them all.
func stopped(pid int) (bool, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, task.Name(), "stat"))
		if errors.Is(err, fs.ErrNotExist) {
			continue // the thread has exited
		}
		if err != nil {
			return false, err
		}
		// "tid (comm) state ...", where comm may contain anything.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) {
			return false, fmt.Errorf("parse %s/%s/stat: %q", dir, task.Name(), b)
		}
		if state := b[i+2]; !strings.ContainsRune("TtZX", rune(state)) { // stopped, traced, or dead
			return false, nil
		}
	}
	return true, nil
}
