package testserver

import (
	"fmt"
	"io"
	"os"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/regent-sched/regent/integration/childproc"

	"github.com/regent-sched/regent/integration/tb"
)

// logTailBytes is how much of a server log is printed when a test fails.
const logTailBytes = 16 << 10

// newBufferLogger returns a zap logger at the given level ("debug", "info",
// "warn", "error", ...) writing human-readable lines into an in-memory
// tail, and registers a cleanup that prints the tail as the test's last
// words if it has failed. The logger stays usable after the test ends,
// unlike tb.TB.Logf.
func newBufferLogger(t tb.TB, what, level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("parse log level %q: %w", level, err)
	}
	buf := childproc.NewTail(logTailBytes)
	enc := zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig())
	lg := zap.New(zapcore.NewCore(enc, zapcore.AddSync(buf), lvl))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log (tail):\n%s", what, buf.String())
		}
	})
	return lg, nil
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
