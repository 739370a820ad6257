package childproc_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/regent-sched/regent/integration/childproc"
)

// helperEnv, when set, makes the test binary act as a parent that starts
// `sleep` and waits to be killed (see TestParentDeathKillsChild).
const helperEnv = "CHILDPROC_TEST_PARENT"

// TestMain fails the package if a test leaves a goroutine behind: every
// process's reaper must have ended.
func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(parentMain())
	}
	goleak.VerifyTestMain(m)
}

// parentMain starts `sleep 60`, prints its pid, and waits to be killed.
func parentMain() int {
	p, err := childproc.Start(childproc.Config{Argv: []string{"sleep", "60"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("%d\n", p.PID())
	time.Sleep(time.Minute)
	return 2
}
