package childproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// Process timing.
const (
	stopWait    = 5 * time.Second  // SIGSTOP to all threads stopped
	reapTimeout = 30 * time.Second // SIGKILL to reaped
	pipeDelay   = 5 * time.Second  // exit to output pipe closed, in case a grandchild holds it
)

// ErrExited is returned by [Process.Pause] when the process has exited
// before it could be stopped.
var ErrExited = errors.New("process exited")

// Config describes a child process to start.
type Config struct {
	// Argv is the program and its arguments. A program name without a
	// slash is looked up in PATH.
	Argv []string
	// Env is the child's environment; nil gives it this process's
	// environment. [Environ] builds one without some variables.
	Env []string
	// Dir is the child's working directory; "" is this process's.
	Dir string
	// Output receives the child's stdout and stderr; nil discards them.
	// An *os.File is handed to the child itself unless TailBytes is set;
	// any other writer is fed from a pipe by one goroutine, and its write
	// errors are ignored so that a broken log cannot block the child.
	Output io.Writer
	// TailBytes is how many bytes of the end of the output [Process.Tail]
	// keeps; 0 keeps none.
	TailBytes int
	// OwnGroup starts the child in a new process group, so that signals to
	// the terminal's foreground group (Ctrl-C) reach it only through its
	// parent.
	OwnGroup bool
}

func (c Config) validate() error {
	var errs []error
	if len(c.Argv) == 0 || c.Argv[0] == "" {
		errs = append(errs, errors.New("no program in Argv"))
	}
	if c.TailBytes < 0 {
		errs = append(errs, fmt.Errorf("TailBytes %d: must not be negative", c.TailBytes))
	}
	return errors.Join(errs...)
}

// Process is a running (or exited) child process started by [Start]. Its
// methods are safe for concurrent use.
type Process struct {
	cmd  *exec.Cmd
	tail *Tail         // nil when Config.TailBytes is 0
	done chan struct{} // closed once the process has been reaped
	err  error         // result of cmd.Wait; read only after done is closed
}

// Start starts the process described by cfg and returns once it runs. A
// goroutine owned by the returned Process waits for it; it ends when the
// process exits, which the caller guarantees with [Process.Stop] or
// [Process.Kill].
func Start(cfg Config) (*Process, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("start child process: %w", err)
	}
	cmd := exec.Command(cfg.Argv[0], cfg.Argv[1:]...)
	cmd.Env = cfg.Env
	cmd.Dir = cfg.Dir
	p := &Process{cmd: cmd, done: make(chan struct{})}
	out := cfg.Output
	if cfg.TailBytes > 0 {
		p.tail = NewTail(cfg.TailBytes)
		out = &teeWriter{out: cfg.Output, tail: p.tail}
	} else if _, isFile := out.(*os.File); out != nil && !isFile {
		out = &teeWriter{out: cfg.Output}
	}
	// The same writer for both, so one pipe and one copying goroutine.
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = pipeDelay
	cmd.SysProcAttr = sysProcAttr(cfg.OwnGroup)

	started := make(chan error, 1)
	go p.run(started)
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", cfg.Argv[0], err)
	}
	return p, nil
}

// run starts the process, reports the outcome on started, and waits for
// the process to exit.
func (p *Process) run(started chan<- error) {
	// The parent-death signal fires when the OS thread that forked the
	// child exits, not when this process does. Keep this goroutine on its
	// own thread until the child has been reaped; the thread is discarded
	// when the goroutine returns while still locked, which is harmless by
	// then.
	runtime.LockOSThread()
	if err := p.cmd.Start(); err != nil {
		started <- err
		return
	}
	started <- nil
	p.err = p.cmd.Wait()
	close(p.done)
}

// PID returns the operating-system process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done returns a channel that is closed once the process has exited and
// been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited and been reaped.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitStatus describes how the process ended ("exit status 1", "signal:
// killed"), or returns "" while it runs.
func (p *Process) ExitStatus() string {
	if !p.Exited() {
		return ""
	}
	if p.err == nil {
		return "exit status 0"
	}
	return p.err.Error()
}

// Tail returns the end of the process's output, up to [Config.TailBytes]
// and starting at a line boundary if it was cut (marked by a first line
// "..."), or "" when TailBytes was 0.
func (p *Process) Tail() string {
	if p.tail == nil {
		return ""
	}
	return p.tail.String()
}

// Signal delivers sig to the process (not to its process group).
// Signalling a process that has exited is not an error.
func (p *Process) Signal(sig os.Signal) error {
	if p.Exited() {
		return nil
	}
	err := p.cmd.Process.Signal(sig)
	if err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("send %v to pid %d: %w", sig, p.PID(), err)
	}
	return nil
}

// Pause stops the process with SIGSTOP and, on Linux, waits until all its
// threads have stopped: the kernel stops them after kill(2) returns, not
// before. It fails with an error matching [ErrExited] if the process
// exits first, and after 5 s if it is still not stopped.
func (p *Process) Pause() error {
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		return err
	}
	deadline := time.Now().Add(stopWait)
	for {
		done, err := stopped(p.PID())
		switch {
		case p.Exited():
			return fmt.Errorf("pid %d: %w while being paused: %s", p.PID(), ErrExited, p.ExitStatus())
		case done, errors.Is(err, errors.ErrUnsupported):
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("pid %d not stopped %v after SIGSTOP (%v)", p.PID(), stopWait, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// Resume lets a process stopped by [Process.Pause] continue (SIGCONT).
// Resuming a process that has exited does nothing.
func (p *Process) Resume() error { return p.Signal(syscall.SIGCONT) }

// Stop asks the process to exit with SIGTERM, resuming it in case it is
// paused, and waits for it; after grace, or when ctx is done, it kills the
// process as [Process.Kill] does. Stopping a process that has exited does
// nothing.
func (p *Process) Stop(ctx context.Context, grace time.Duration) error {
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	if err := p.Signal(syscall.SIGCONT); err != nil {
		return err
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-timer.C:
	case <-ctx.Done():
	}
	return p.Kill()
}

// Kill sends SIGKILL, which also ends a paused process, and waits until
// the process has been reaped; the kernel bounds that wait, so it takes no
// context (it gives up with an error after 30 s). Killing a process that
// has exited does nothing.
func (p *Process) Kill() error {
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	timer := time.NewTimer(reapTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-timer.C:
		return fmt.Errorf("pid %d not reaped %v after SIGKILL", p.PID(), reapTimeout)
	}
}
