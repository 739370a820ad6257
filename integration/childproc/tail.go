package childproc

import (
	"io"
	"strings"
	"sync"
)

// Tail is an io.Writer that keeps the last bytes written to it, for
// quoting the end of a log in an error message. It is safe for concurrent
// use.
type Tail struct {
	mu    sync.Mutex
	limit int
	buf   []byte
	cut   bool // bytes before buf were dropped
}

// NewTail returns a Tail that keeps the last limit bytes; with limit 0 or
// less it keeps nothing.
func NewTail(limit int) *Tail { return &Tail{limit: limit} }

// Write implements io.Writer. It never fails.
func (t *Tail) Write(p []byte) (int, error) {
	if t.limit <= 0 {
		return len(p), nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.limit {
		// Trim in bulk so that writes stay amortised O(len(p)).
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.limit:]...)
		t.cut = true
	}
	return len(p), nil
}

// String returns the kept bytes. If earlier output was dropped, it starts
// at a line boundary after a first line "...".
func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := string(t.buf)
	cut := t.cut
	if len(s) > t.limit {
		s = s[len(s)-t.limit:]
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

// teeWriter copies a child's output to a writer (if any) and a Tail (if
// any). It never fails: a broken writer must not stop the copying, which
// would block the child once the pipe fills.
type teeWriter struct {
	out  io.Writer
	tail *Tail
}

// Write implements io.Writer.
func (w *teeWriter) Write(p []byte) (int, error) {
	if w.out != nil {
		_, _ = w.out.Write(p)
	}
	if w.tail != nil {
		_, _ = w.tail.Write(p)
	}
	return len(p), nil
}
