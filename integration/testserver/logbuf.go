package testserver

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// tailBuffer keeps the most recent output written to it, up to limit
// bytes. It is safe for concurrent use and may be written to after the test
// that created it has finished, unlike testing.TB.Logf.
type tailBuffer struct {
	mu    sync.Mutex
	limit int
	buf   []byte
	cut   bool
}

func newTailBuffer(limit int) *tailBuffer { return &tailBuffer{limit: limit} }

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

// Sync implements zapcore.WriteSyncer.
func (b *tailBuffer) Sync() error { return nil }

// String returns the buffered tail, starting at a line boundary.
func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := string(b.buf)
	if len(s) > b.limit {
		s = s[len(s)-b.limit:]
		b.cut = true
	}
	if b.cut {
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
		s = "...\n" + s
	}
	return s
}

// newBufferLogger returns a zap logger at the given level ("debug", "info",
// "warn", "error", ...) writing human-readable lines into a tailBuffer, and
// registers a cleanup that prints the buffer as the test's last words if it
// has failed. The logger stays usable after the test ends.
func newBufferLogger(t testing.TB, what, level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("parse log level %q: %w", level, err)
	}
	buf := newTailBuffer(logTailBytes)
	enc := zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig())
	lg := zap.New(zapcore.NewCore(enc, buf, lvl))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log (tail):\n%s", what, buf.String())
		}
	})
	return lg, nil
}
