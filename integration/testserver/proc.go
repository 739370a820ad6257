package testserver

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// logTailBytes is how much of a server log is printed when a test fails.
const logTailBytes = 16 << 10

// childProcess is one run of a server binary. Its stdout and stderr are
// appended to a log file. A goroutine owned by the childProcess waits for
// the process; it ends when the process exits, which the owner of the
// childProcess guarantees by calling kill or terminate before the test ends.
type childProcess struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has been reaped
	err  error         // result of cmd.Wait; read only after done is closed
}

// startChild starts argv with stdout and stderr appended to logPath.
func startChild(name string, argv []string, env []string, logPath string) (*childProcess, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: open log: %w", name, err)
	}
	// The child has its own copy of the descriptor after Start.
	defer f.Close()
	fmt.Fprintf(f, "==== %s: starting %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(argv, " "))

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout = f
	cmd.Stderr = f
	setChildAttrs(cmd)

	p := &childProcess{name: name, cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// The parent-death signal set by setChildAttrs fires when the OS
		// thread that forked the child exits, not when the process does.
		// Keep this goroutine on its own thread until the child has been
		// reaped; the thread is discarded when the goroutine returns while
		// still locked, which is harmless by then.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return p, nil
}

// pid returns the operating-system process id.
func (p *childProcess) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has terminated and been reaped.
func (p *childProcess) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitStatus describes how the process ended; valid once exited is true.
func (p *childProcess) exitStatus() string {
	if p.err == nil {
		return "exit status 0"
	}
	return p.err.Error()
}

// signal delivers sig. Signalling a process that has already exited is
// not an error.
func (p *childProcess) signal(sig syscall.Signal) error {
	if p.exited() {
		return nil
	}
	err := p.cmd.Process.Signal(sig)
	if err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("send %v to %s (pid %d): %w", sig, p.name, p.pid(), err)
	}
	return nil
}

// wait blocks until the process has exited or timeout has passed.
func (p *childProcess) wait(timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-timer.C:
		return fmt.Errorf("wait for %s (pid %d) to exit: timed out after %v", p.name, p.pid(), timeout)
	}
}

// kill sends SIGKILL and waits until the process has been reaped. SIGKILL
// also ends a process stopped with SIGSTOP.
func (p *childProcess) kill() error {
	if err := p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	return p.wait(30 * time.Second)
}

// terminate asks the process to exit with SIGTERM (resuming it first in
// case it is stopped), waits up to grace, and then kills it.
func (p *childProcess) terminate(grace time.Duration) error {
	if err := p.signal(syscall.SIGTERM); err != nil {
		return err
	}
	if err := p.signal(syscall.SIGCONT); err != nil {
		return err
	}
	if p.wait(grace) == nil {
		return nil
	}
	return p.kill()
}

// tailFile returns at most max bytes from the end of the file at path,
// starting at a line boundary when it had to cut.
func tailFile(path string, max int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(cannot stat %s: %v)", path, err)
	}
	off := int64(0)
	if fi.Size() > max {
		off = fi.Size() - max
	}
	b, err := io.ReadAll(io.NewSectionReader(f, off, fi.Size()-off))
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	s := string(b)
	if off > 0 {
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
		s = "...\n" + s
	}
	return s
}

// childEnv returns the environment for a server process: the test's
// environment without variables whose name starts with any of drop.
func childEnv(drop ...string) []string {
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, prefix := range drop {
			if strings.HasPrefix(kv, prefix) {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}
