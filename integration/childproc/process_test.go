package childproc_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/regent-sched/regent/integration/childproc"
)

// start starts cfg and kills the process at cleanup.
func start(t *testing.T, cfg childproc.Config) *childproc.Process {
	t.Helper()
	p, err := childproc.Start(cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Kill(); err != nil {
			t.Errorf("kill at cleanup: %v", err)
		}
	})
	return p
}

// waitDone waits for p to exit.
func waitDone(t *testing.T, p *childproc.Process) {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("pid %d did not exit within 10s", p.PID())
	}
}

// waitOutput waits until p's output tail contains s.
func waitOutput(t *testing.T, p *childproc.Process, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.Tail(), s) {
		if p.Exited() || time.Now().After(deadline) {
			t.Fatalf("output %q does not contain %q (exited: %v)", p.Tail(), s, p.Exited())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStartRejectsBadConfig(t *testing.T) {
	for _, cfg := range []childproc.Config{
		{},
		{Argv: []string{""}},
		{Argv: []string{"true"}, TailBytes: -1},
	} {
		if p, err := childproc.Start(cfg); err == nil {
			p.Kill()
			t.Errorf("Start(%+v) succeeded, want an error", cfg)
		}
	}
}

func TestStartMissingProgram(t *testing.T) {
	_, err := childproc.Start(childproc.Config{Argv: []string{filepath.Join(t.TempDir(), "missing")}})
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Start(missing program) = %v, want an error matching os.ErrNotExist", err)
	}
}

func TestOutputEnvDirAndExitStatus(t *testing.T) {
	dir := t.TempDir()
	// Read only after Done: Wait, which precedes it, waits for the copying.
	var out bytes.Buffer
	p := start(t, childproc.Config{
		Argv:      []string{"sh", "-c", `echo "out $CHILDPROC_X"; pwd; echo err >&2; exit 3`},
		Env:       []string{"CHILDPROC_X=42", "PATH=" + os.Getenv("PATH")},
		Dir:       dir,
		Output:    &out,
		TailBytes: 1 << 10,
	})
	if p.PID() <= 0 {
		t.Errorf("PID() = %d, want a process id", p.PID())
	}
	waitDone(t, p)
	if !p.Exited() {
		t.Error("Exited() = false after Done")
	}
	if got, want := p.ExitStatus(), "exit status 3"; got != want {
		t.Errorf("ExitStatus() = %q, want %q", got, want)
	}
	want := "out 42\n" + dir + "\nerr\n"
	if got := out.String(); got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
	if got := p.Tail(); got != want {
		t.Errorf("Tail() = %q, want %q", got, want)
	}
}

func TestOutputToFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	p := start(t, childproc.Config{Argv: []string{"sh", "-c", "echo hello; echo world >&2"}, Output: f})
	f.Close() // the child has its own descriptor
	waitDone(t, p)
	if got, want := p.ExitStatus(), "exit status 0"; got != want {
		t.Errorf("ExitStatus() = %q, want %q", got, want)
	}
	if p.Tail() != "" {
		t.Errorf("Tail() = %q without TailBytes, want \"\"", p.Tail())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "hello\nworld\n"; got != want {
		t.Errorf("log = %q, want %q", got, want)
	}
}

// failingWriter fails every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken log") }

// TestBrokenOutputDoesNotBlock checks that a writer that fails does not
// stop the copying of output, which would block the child on a full pipe.
func TestBrokenOutputDoesNotBlock(t *testing.T) {
	p := start(t, childproc.Config{
		Argv:      []string{"sh", "-c", "i=0; while [ $i -lt 3000 ]; do echo 0123456789012345678901234567890123456789; i=$((i+1)); done; echo end"},
		Output:    failingWriter{},
		TailBytes: 64,
	})
	waitDone(t, p)
	if got, want := p.ExitStatus(), "exit status 0"; got != want {
		t.Errorf("ExitStatus() = %q, want %q", got, want)
	}
	if got := p.Tail(); !strings.HasPrefix(got, "...\n") || !strings.HasSuffix(got, "\nend\n") {
		t.Errorf("Tail() = %q, want a cut marker and the last lines", got)
	}
}

func TestRunningProcess(t *testing.T) {
	p := start(t, childproc.Config{Argv: []string{"sleep", "60"}})
	if p.Exited() {
		t.Fatal("Exited() = true for a running process")
	}
	if got := p.ExitStatus(); got != "" {
		t.Errorf("ExitStatus() = %q while running, want \"\"", got)
	}
	select {
	case <-p.Done():
		t.Fatal("Done closed while the process runs")
	default:
	}
	if err := p.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if !p.Exited() {
		t.Fatal("Exited() = false after Kill returned")
	}
	if got, want := p.ExitStatus(), "signal: killed"; got != want {
		t.Errorf("ExitStatus() = %q, want %q", got, want)
	}
	for _, f := range []func() error{
		p.Kill,
		p.Resume,
		func() error { return p.Signal(syscall.SIGTERM) },
		func() error { return p.Stop(context.Background(), time.Second) },
	} {
		if err := f(); err != nil {
			t.Errorf("on an exited process: %v, want nil", err)
		}
	}
}

func TestPauseResume(t *testing.T) {
	p := start(t, childproc.Config{Argv: []string{"sleep", "60"}})
	if err := p.Pause(); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	if runtime.GOOS == "linux" {
		if got := state(t, p.PID()); got != 'T' {
			t.Fatalf("state after Pause = %c, want T (stopped)", got)
		}
	}
	if err := p.Resume(); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if runtime.GOOS == "linux" {
		deadline := time.Now().Add(5 * time.Second)
		for state(t, p.PID()) == 'T' {
			if time.Now().After(deadline) {
				t.Fatal("still stopped 5s after Resume")
			}
			time.Sleep(time.Millisecond)
		}
	}
	if p.Exited() {
		t.Fatalf("exited after Pause and Resume: %s", p.ExitStatus())
	}
}

// TestPauseWaitsForEveryThread pauses a Go program with several threads
// busy: Pause must return only once all of them have stopped.
func TestPauseWaitsForEveryThread(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("threads' states are read from /proc")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("go not in PATH: %v", err)
	}
	src := filepath.Join(t.TempDir(), "spin.go")
	prog := "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfor i := 0; i < 8; i++ {\n\t\tgo func() {\n\t\t\tfor {\n\t\t\t}\n\t\t}()\n\t}\n\tfmt.Println(\"spinning\")\n\tselect {}\n}\n"
	if err := os.WriteFile(src, []byte(prog), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "spin")
	if out, err := exec.Command("go", "build", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	p := start(t, childproc.Config{Argv: []string{bin}, TailBytes: 1 << 10})
	waitOutput(t, p, "spinning")
	for i := 0; i < 5; i++ {
		if err := p.Pause(); err != nil {
			t.Fatalf("Pause: %v", err)
		}
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", p.PID()))
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range tasks {
			tid, _ := strconv.Atoi(task.Name())
			if got := taskState(t, p.PID(), tid); got != 'T' {
				t.Fatalf("thread %d in state %c after Pause, want T", tid, got)
			}
		}
		if err := p.Resume(); err != nil {
			t.Fatalf("Resume: %v", err)
		}
	}
}

func TestPauseExitedProcess(t *testing.T) {
	p := start(t, childproc.Config{Argv: []string{"true"}})
	waitDone(t, p)
	if err := p.Pause(); !errors.Is(err, childproc.ErrExited) {
		t.Fatalf("Pause of an exited process = %v, want an error matching ErrExited", err)
	}
}

func TestStopGraceful(t *testing.T) {
	p := start(t, childproc.Config{
		Argv:      []string{"sh", "-c", `trap 'echo bye; exit 7' TERM; echo ready; while :; do sleep 0.01; done`},
		TailBytes: 1 << 10,
	})
	waitOutput(t, p, "ready")
	if err := p.Stop(context.Background(), 10*time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if got, want := p.ExitStatus(), "exit status 7"; got != want {
		t.Errorf("ExitStatus() = %q, want %q (the TERM handler's)", got, want)
	}
	if !strings.Contains(p.Tail(), "bye") {
		t.Errorf("output %q lacks the TERM handler's bye", p.Tail())
	}
}

// TestStopPaused checks that Stop resumes a paused process, so that it
// can handle SIGTERM.
func TestStopPaused(t *testing.T) {
	p := start(t, childproc.Config{
		Argv:      []string{"sh", "-c", `trap 'exit 7' TERM; echo ready; while :; do sleep 0.01; done`},
		TailBytes: 1 << 10,
	})
	waitOutput(t, p, "ready")
	if err := p.Pause(); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	if err := p.Stop(context.Background(), 10*time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if got, want := p.ExitStatus(), "exit status 7"; got != want {
		t.Errorf("ExitStatus() = %q, want %q", got, want)
	}
}

func TestStopKillsAfterGraceOrContext(t *testing.T) {
	stubborn := []string{"sh", "-c", `trap '' TERM; echo ready; while :; do sleep 0.01; done`}
	t.Run("grace", func(t *testing.T) {
		p := start(t, childproc.Config{Argv: stubborn, TailBytes: 1 << 10})
		waitOutput(t, p, "ready")
		begin := time.Now()
		if err := p.Stop(context.Background(), 200*time.Millisecond); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if d := time.Since(begin); d < 200*time.Millisecond {
			t.Errorf("Stop returned after %v, before the grace period", d)
		}
		if got, want := p.ExitStatus(), "signal: killed"; got != want {
			t.Errorf("ExitStatus() = %q, want %q", got, want)
		}
	})
	t.Run("context", func(t *testing.T) {
		p := start(t, childproc.Config{Argv: stubborn, TailBytes: 1 << 10})
		waitOutput(t, p, "ready")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := p.Stop(ctx, time.Minute); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if got, want := p.ExitStatus(), "signal: killed"; got != want {
			t.Errorf("ExitStatus() = %q, want %q", got, want)
		}
	})
}

func TestOwnGroup(t *testing.T) {
	mine := syscall.Getpgrp()
	for _, own := range []bool{false, true} {
		p := start(t, childproc.Config{Argv: []string{"sleep", "60"}, OwnGroup: own})
		pgid, err := syscall.Getpgid(p.PID())
		if err != nil {
			t.Fatal(err)
		}
		if own && pgid != p.PID() {
			t.Errorf("OwnGroup: process group %d, want its own (%d)", pgid, p.PID())
		}
		if !own && pgid != mine {
			t.Errorf("no OwnGroup: process group %d, want the parent's (%d)", pgid, mine)
		}
	}
}

// TestParentDeathKillsChild runs this test binary as a parent that starts
// `sleep 60`, kills the parent with SIGKILL, and checks that the kernel
// ended the sleep too.
func TestParentDeathKillsChild(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the parent-death signal is Linux only")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	parent := exec.Command(exe, "-test.run=^$")
	parent.Env = append(os.Environ(), helperEnv+"=1")
	parent.Stderr = os.Stderr
	stdout, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		parent.Process.Kill()
		parent.Wait()
		t.Fatalf("read the child's pid from the parent: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		parent.Process.Kill()
		parent.Wait()
		t.Fatalf("parent printed %q, want a pid", line)
	}
	if err := parent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	parent.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || procState(st) == 'Z' {
			return // gone, or dead and waiting for init to reap it
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("child %d still runs 10s after its parent was killed: %s", pid, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// state returns the state letter of process pid from /proc.
func state(t *testing.T, pid int) byte {
	t.Helper()
	return taskState(t, pid, pid)
}

// taskState returns the state letter of thread tid of process pid.
func taskState(t *testing.T, pid, tid int) byte {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid))
	if err != nil {
		t.Fatal(err)
	}
	return procState(b)
}

// procState parses the state from a /proc stat line "pid (comm) S ...".
func procState(stat []byte) byte {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return 0
	}
	return stat[i+2]
}
