package simtest

import (
	"time"

	"github.com/regent-sched/regent/integration/mesossim"

	"github.com/regent-sched/regent/integration/tb"
)

// Eventually polls cond every 25 ms until it holds, and fails the test
// naming what it waited for when d passes first.
func Eventually(t tb.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", d, what)
}

// Running returns a condition that holds when c has exactly one framework,
// connected, running exactly n tasks, all TASK_RUNNING, with every status
// update acknowledged.
func Running(c *mesossim.Cluster, n int) func() bool {
	return func() bool {
		st := c.Snapshot()
		if len(st.Frameworks) != 1 || !st.Frameworks[0].Connected || len(st.Frameworks[0].Tasks) != n ||
			st.Frameworks[0].UnackedUpdates != 0 {
			return false
		}
		for _, tk := range st.Frameworks[0].Tasks {
			if tk.State != "TASK_RUNNING" {
				return false
			}
		}
		return true
	}
}
