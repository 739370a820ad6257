package browser

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"
)

// DefaultTimeout bounds a call whose context has no deadline.
const DefaultTimeout = 60 * time.Second

// ErrLoadFailed is wrapped by the error of a call whose page did not load:
// the connection was refused, the host did not resolve, and so on. The
// error names Chromium's net:: error code.
var ErrLoadFailed = errors.New("page did not load")

const (
	// tempPrefix starts the name of each call's temporary directory.
	tempPrefix = "regent-browser-"
	// reapTimeout bounds the wait for Chromium's helpers to die.
	reapTimeout = 10 * time.Second
	// reapPoll is how often the process table is read while waiting.
	reapPoll = 20 * time.Millisecond
	// stderrTail is how much of Chromium's stderr an error carries.
	stderrTail = 8 << 10

	stdoutName = "stdout"
	stderrName = "stderr"
)

// loadFailedRE finds headless Chromium's report of a failed navigation.
var loadFailedRE = regexp.MustCompile(`Page load failed: (\S+)`)

// flags are passed to every run, before the operation's own flags and the
// URL. dir is the run's temporary directory.
func flags(dir string) []string {
	return []string{
		"--headless",
		"--no-sandbox", // needed as root; containers rarely allow its namespaces
		"--disable-gpu",
		"--disable-dev-shm-usage", // a container's /dev/shm may be tiny
		"--user-data-dir=" + filepath.Join(dir, "profile"),
		"--no-first-run",
		"--no-default-browser-check",
		"--password-store=basic",
		"--disable-extensions",
		"--disable-default-apps",
		"--disable-sync",
		"--disable-background-networking",
		"--disable-component-update",
		"--disable-domain-reliability",
		"--disable-client-side-phishing-detection",
		"--metrics-recording-only",
		// Fence: only loopback names resolve, and every request not bypassed
		// as loopback goes to a proxy port where nothing answers.
		"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1 , EXCLUDE [::1]",
		"--proxy-server=http://127.0.0.1:9",
	}
}

// run runs Chromium once with flags, extra and target, in a fresh
// temporary directory that is also its working directory. After Chromium
// and all its helpers have ended it calls collect with the directory, to
// pick up what Chromium wrote there, and then removes the directory. op
// names the operation in errors.
func run(ctx context.Context, op, target string, extra []string, collect func(dir string) error) (err error) {
	fail := func(format string, a ...any) error {
		return fmt.Errorf("browser: %s %s: "+format, append([]any{op, target}, a...)...)
	}
	if err := checkURL(target); err != nil {
		return fail("%w", err)
	}
	bin, err := Find()
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	dir, err := os.MkdirTemp("", tempPrefix)
	if err != nil {
		return fail("%w", err)
	}
	defer func() {
		if rmErr := os.RemoveAll(dir); rmErr != nil {
			err = errors.Join(err, fmt.Errorf("browser: remove %s: %w", dir, rmErr))
		}
	}()

	tmp, err := socketTempDir(dir)
	if err != nil {
		return fail("%w", err)
	}
	if tmp != dir {
		defer func() {
			if rmErr := os.RemoveAll(tmp); rmErr != nil {
				err = errors.Join(err, fmt.Errorf("browser: remove %s: %w", tmp, rmErr))
			}
		}()
	}

	args := append(append(flags(dir), extra...), target)
	start := time.Now()
	runErr := execute(ctx, bin, dir, tmp, args)
	elapsed := time.Since(start).Round(time.Millisecond)
	stderr := readStderr(dir)
	switch {
	case ctx.Err() != nil:
		return fail("%w after %v (%v)\n%s", ctx.Err(), elapsed, runErr, stderrReport(stderr))
	case runErr != nil:
		return fail("%w\n%s", runErr, stderrReport(stderr))
	}
	if m := loadFailedRE.FindStringSubmatch(stderr); m != nil {
		return fail("%w: %s\n%s", ErrLoadFailed, m[1], stderrReport(stderr))
	}
	if err := collect(dir); err != nil {
		return fail("%w\n%s", err, stderrReport(stderr))
	}
	return nil
}

// execute runs bin with args in dir, its output in files there and its
// TMPDIR at tmp, and returns once it and every process it started have
// ended. The context ending kills Chromium's whole process group.
func execute(ctx context.Context, bin, dir, tmp string, args []string) error {
	if err := os.Mkdir(filepath.Join(dir, "home"), 0o700); err != nil {
		return err
	}
	stdout, err := os.Create(filepath.Join(dir, stdoutName))
	if err != nil {
		return err
	}
	defer stdout.Close()
	stderr, err := os.Create(filepath.Join(dir, stderrName))
	if err != nil {
		return err
	}
	defer stderr.Close()

	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = childEnv(dir, tmp)
	cmd.Stdout = stdout // files, not pipes: helpers that inherit them cannot stall Wait
	cmd.Stderr = stderr
	setProcAttrs(cmd)
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }

	// The parent-death signal fires when the thread that forked the child
	// exits: keep this goroutine on its thread until the child is reaped.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	pgid := cmd.Process.Pid
	// Kill the rest of the group while the unreaped leader still holds the
	// group's id, so the signal cannot reach a group that reused it.
	exitErr := waitExited(pgid)
	groupErr := killGroup(pgid)
	waitErr := cmd.Wait()
	return errors.Join(waitErr, exitErr, groupErr, reap(pgid, dir))
}

// reap waits until no process of group pgid, nor any process whose command
// line names dir (Chromium's crash handlers leave the group), is running,
// killing those it finds.
func reap(pgid int, dir string) error {
	deadline := time.Now().Add(reapTimeout)
	for {
		pids := runningProcesses(pgid, dir)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chromium processes %v still running %v after the browser exited", pids, reapTimeout)
		}
		for _, pid := range pids {
			killProcess(pid)
		}
		time.Sleep(reapPoll)
	}
}

// socketTempDir returns the directory to be Chromium's TMPDIR: dir itself,
// unless the Unix socket Chromium makes there would have a path too long
// for the kernel (Chromium then aborts), in which case a new directory
// under /tmp that the caller removes.
func socketTempDir(dir string) (string, error) {
	// sun_path holds 108 bytes with the NUL; Chromium adds this much.
	const maxPath, suffix = 107, len("/org.chromium.Chromium.XXXXXX/SingletonSocket")
	if len(dir)+suffix <= maxPath {
		return dir, nil
	}
	return os.MkdirTemp("/tmp", tempPrefix)
}

// childEnv is the caller's environment with HOME and the XDG directories
// moved into dir and TMPDIR set to tmp, so that Chromium writes nothing
// outside the call's directories.
func childEnv(dir, tmp string) []string {
	home := filepath.Join(dir, "home")
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "HOME", "TMPDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME":
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
		"XDG_DATA_HOME="+filepath.Join(home, ".local", "share"),
		"XDG_STATE_HOME="+filepath.Join(home, ".local", "state"),
		"TMPDIR="+tmp,
	)
}

// checkURL refuses a URL the fenced-in browser could not load: an http or
// https URL whose host is not loopback, or a scheme other than those and
// file, data and about.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	switch u.Scheme {
	case "file", "data", "about":
		return nil
	case "http", "https":
	default:
		return fmt.Errorf("scheme %q: want http, https, file, data or about", u.Scheme)
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("host %q is not loopback: the browser reaches only localhost, 127.0.0.0/8 and ::1", host)
}

// readStderr returns what Chromium wrote to stderr in dir.
func readStderr(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, stderrName))
	if err != nil {
		return fmt.Sprintf("(cannot read chromium's stderr: %v)", err)
	}
	return string(b)
}

// stderrReport formats the end of Chromium's stderr for an error message,
// without the complaints about a missing D-Bus that every run in a
// container prints.
func stderrReport(stderr string) string {
	var kept []string
	dropped := 0
	for _, line := range strings.Split(strings.TrimRight(stderr, "\n"), "\n") {
		if strings.Contains(line, ":ERROR:dbus/") {
			dropped++
			continue
		}
		kept = append(kept, line)
	}
	s := strings.Join(kept, "\n")
	if len(s) > stderrTail {
		s = "..." + s[len(s)-stderrTail:]
	}
	if strings.TrimSpace(s) == "" {
		s = "(nothing)"
	}
	head := "chromium stderr"
	if dropped > 0 {
		head += fmt.Sprintf(" (%d D-Bus lines left out)", dropped)
	}
	return head + ":\n" + s
}
