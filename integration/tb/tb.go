// Package tb is the part of testing.TB that regent's harnesses
// (testserver, simtest, drill) use, so that they run inside `go test` (a
// *testing.T or *testing.B is a TB) and inside a program: `regent drill
// --local` runs the same topologies and drills with a Runner.
package tb

import (
	"fmt"
	"io"
	"os"
	"sync"
)

// TB is what the harnesses need of a test.
type TB interface {
	Helper()
	Cleanup(func())
	Error(args ...any)
	Errorf(format string, args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Failed() bool
	TempDir() string
}

// Runner is a TB for programs. Fatal and Fatalf end the function given to
// Run (by a panic that Run recovers), so they must be called from Run's
// goroutine, as testing requires of FailNow; cleanups run in reverse
// order when Run returns.
type Runner struct {
	// Log receives Logf and the errors; nothing when nil.
	Log io.Writer

	mu       sync.Mutex
	failed   bool
	errs     []string
	cleanups []func()
	dirs     []string
}

type fatal struct{}

// Run calls f, then the cleanups f registered, and returns an error
// listing every failure reported, or nil.
func (r *Runner) Run(f func()) (err error) {
	defer func() {
		r.runCleanups()
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.failed && err == nil {
			err = fmt.Errorf("%d failures; the first: %s", len(r.errs), r.errs[0])
		}
	}()
	defer func() {
		if p := recover(); p != nil {
			if _, ok := p.(fatal); !ok {
				panic(p)
			}
		}
	}()
	f()
	return nil
}

func (r *Runner) runCleanups() {
	for {
		r.mu.Lock()
		n := len(r.cleanups)
		if n == 0 {
			dirs := r.dirs
			r.dirs = nil
			r.mu.Unlock()
			for _, d := range dirs {
				os.RemoveAll(d)
			}
			return
		}
		c := r.cleanups[n-1]
		r.cleanups = r.cleanups[:n-1]
		r.mu.Unlock()
		func() {
			defer func() {
				if p := recover(); p != nil {
					if _, ok := p.(fatal); !ok {
						panic(p)
					}
				}
			}()
			c()
		}()
	}
}

// Helper does nothing.
func (r *Runner) Helper() {}

// Cleanup registers f to run when Run returns.
func (r *Runner) Cleanup(f func()) {
	r.mu.Lock()
	r.cleanups = append(r.cleanups, f)
	r.mu.Unlock()
}

// Error records a failure.
func (r *Runner) Error(args ...any) { r.fail(fmt.Sprint(args...)) }

// Errorf records a failure.
func (r *Runner) Errorf(format string, args ...any) { r.fail(fmt.Sprintf(format, args...)) }

// Fatal records a failure and ends Run's function.
func (r *Runner) Fatal(args ...any) {
	r.fail(fmt.Sprint(args...))
	panic(fatal{})
}

// Fatalf records a failure and ends Run's function.
func (r *Runner) Fatalf(format string, args ...any) {
	r.fail(fmt.Sprintf(format, args...))
	panic(fatal{})
}

// Logf writes a line to Log.
func (r *Runner) Logf(format string, args ...any) {
	if r.Log != nil {
		r.mu.Lock()
		fmt.Fprintf(r.Log, format+"\n", args...)
		r.mu.Unlock()
	}
}

// Failed reports whether a failure was recorded.
func (r *Runner) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// Errors returns the failures recorded so far.
func (r *Runner) Errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

// TempDir returns a new directory, removed when Run returns.
func (r *Runner) TempDir() string {
	d, err := os.MkdirTemp("", "regent-drill-")
	if err != nil {
		r.Fatalf("tb: temp dir: %v", err)
	}
	r.mu.Lock()
	r.dirs = append(r.dirs, d)
	r.mu.Unlock()
	return d
}

func (r *Runner) fail(msg string) {
	r.mu.Lock()
	r.failed = true
	r.errs = append(r.errs, msg)
	r.mu.Unlock()
	r.Logf("FAIL: %s", msg)
}

var _ TB = (*Runner)(nil)
