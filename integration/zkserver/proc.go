package zkserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process timing.
const (
	stopGrace   = 10 * time.Second // SIGTERM to SIGKILL
	reapTimeout = 30 * time.Second // SIGKILL to reaped
	stopWait    = 5 * time.Second  // SIGSTOP to all threads stopped
	outputTail  = 4 << 10          // bytes of output quoted in start errors
)

// process is one run of the server. Its output goes to a log writer and
// into an in-memory tail. A goroutine owned by the process waits for it;
// it ends when the process exits, which the owning Server guarantees by
// killing or terminating the process at Close.
type process struct {
	cmd  *exec.Cmd
	out  *tailBuffer   // the end of this run's output
	done chan struct{} // closed once the process has been reaped
	err  error         // result of cmd.Wait; read only after done is closed
}

// startProcess starts argv with its stdout and stderr written to log.
func startProcess(argv, env []string, log io.Writer) (*process, error) {
	fmt.Fprintf(log, "==== %s: starting %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(argv, " "))
	out := &tailBuffer{limit: outputTail}
	w := &teeWriter{log: log, tail: out} // one pointer for both, so one copying goroutine
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout = w
	cmd.Stderr = w
	cmd.WaitDelay = 5 * time.Second // in case something inherited the output pipe
	setChildAttrs(cmd)

	p := &process{cmd: cmd, out: out, done: make(chan struct{})}
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
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	return p, nil
}

// pid returns the operating-system process id.
func (p *process) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has terminated and been reaped.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitStatus describes how the process ended; valid once exited is true.
func (p *process) exitStatus() string {
	if p.err == nil {
		return "exit status 0"
	}
	return p.err.Error()
}

// signal delivers sig. Signalling a process that has exited is not an
// error.
func (p *process) signal(sig syscall.Signal) error {
	if p.exited() {
		return nil
	}
	err := p.cmd.Process.Signal(sig)
	if err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("send %v to pid %d: %w", sig, p.pid(), err)
	}
	return nil
}

// pause stops the process with SIGSTOP and, where the operating system
// tells, waits until all its threads have stopped: the kernel stops them
// after the signal is sent, not before kill(2) returns.
func (p *process) pause() error {
	if err := p.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	deadline := time.Now().Add(stopWait)
	for {
		done, err := stopped(p.pid())
		switch {
		case done, errors.Is(err, errors.ErrUnsupported):
			return nil
		case p.exited():
			return fmt.Errorf("pid %d exited while being paused: %s", p.pid(), p.exitStatus())
		case time.Now().After(deadline):
			return fmt.Errorf("pid %d not stopped %v after SIGSTOP (%v)", p.pid(), stopWait, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// kill sends SIGKILL, which also ends a stopped process, and waits until
// the process has been reaped.
func (p *process) kill() error {
	if err := p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	timer := time.NewTimer(reapTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-timer.C:
		return fmt.Errorf("pid %d not reaped %v after SIGKILL", p.pid(), reapTimeout)
	}
}

// terminate asks the process to exit with SIGTERM (resuming it in case it
// is stopped) and waits for it; after stopGrace, or when ctx is done, it
// kills the process.
func (p *process) terminate(ctx context.Context) error {
	if err := p.signal(syscall.SIGTERM); err != nil {
		return err
	}
	if err := p.signal(syscall.SIGCONT); err != nil {
		return err
	}
	timer := time.NewTimer(stopGrace)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-timer.C:
	case <-ctx.Done():
	}
	return p.kill()
}

// teeWriter copies the server's output to a log and a tail. It never
// fails: a broken log must not stop the copying, which would block the
// server once the pipe fills.
type teeWriter struct {
	log  io.Writer
	tail *tailBuffer
}

// Write implements io.Writer.
func (w *teeWriter) Write(p []byte) (int, error) {
	_, _ = w.log.Write(p)
	return w.tail.Write(p)
}

// tailBuffer keeps the last limit bytes written to it. It is safe for
// concurrent use.
type tailBuffer struct {
	mu    sync.Mutex
	limit int
	buf   []byte
	cut   bool
}

// Write implements io.Writer.
func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > 2*b.limit {
		// Trim in bulk so that writes stay amortised O(len(p)).
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-b.limit:]...)
		b.cut = true
	}
	return len(p), nil
}

// String returns the kept tail, starting at a line boundary if it was cut.
func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := string(b.buf)
	cut := b.cut
	if len(s) > b.limit {
		s = s[len(s)-b.limit:]
		cut = true
	}
	if cut {
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
		s = "...\n" + s
	}
	return s
}
