package persist

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain runs the crash helper when the test binary is re-executed as
// one (see crash_test.go), and otherwise the tests, failing the package if
// any goroutine is left behind.
func TestMain(m *testing.M) {
	if cfg := os.Getenv(crashHelperEnv); cfg != "" {
		os.Exit(runCrashHelper(cfg))
	}
	goleak.VerifyTestMain(m)
}
