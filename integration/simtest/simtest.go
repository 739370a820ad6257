// Package simtest starts a mesos-sim cluster for the tests of packages that
// run schedulers against it (core, ha, the drills): fast intervals, N
// default agents, closed when the test ends.
package simtest

import (
	"github.com/regent-sched/regent/integration/mesossim"

	"github.com/regent-sched/regent/integration/tb"
)

// Start returns a running cluster with mesossim.FastConfig, changed by mod
// when it is not nil, and agents default agents. It is closed at the end
// of the test.
func Start(t tb.TB, agents int, mod func(*mesossim.Config)) *mesossim.Cluster {
	t.Helper()
	cfg := mesossim.FastConfig()
	if mod != nil {
		mod(&cfg)
	}
	c, err := mesossim.New(cfg)
	if err != nil {
		t.Fatalf("start mesos-sim: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	for i := 0; i < agents; i++ {
		if _, err := c.AddAgent(mesossim.AgentSpec{}); err != nil {
			t.Fatalf("add agent: %v", err)
		}
	}
	return c
}
