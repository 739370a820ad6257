package drill

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/regent-sched/regent/integration/simtest"
)

// TestCheckerCatchesAReplicaOutsideTheElection plants a replica with
// another --store-prefix: it has its own election and an empty store, so
// it registers a second framework next to the group's. The checker must
// say so; before it started, the same topology passes.
func TestCheckerCatchesAReplicaOutsideTheElection(t *testing.T) {
	tp := Start(t, Options{Replicas: 2})
	firstLeader(t, tp)
	tp.MustPass(context.Background())

	rogue := tp.AddReplica("rogue", "--store-prefix", "/elsewhere")
	simtest.Eventually(t, 30*time.Second, "a second framework", func() bool {
		return len(tp.Sim.Snapshot().Frameworks) == 2
	})
	vs := tp.Check(context.Background())
	found := false
	for _, v := range vs {
		if v.Rule == "one-framework" && len(v.Around) > 0 {
			found = true
		}
	}
	if !found {
		t.Fatalf("the checker did not report the second framework; it reported %v", vs)
	}
	if s := vs[0].String(); !strings.Contains(s, "SUBSCRIBE") {
		t.Errorf("a violation does not show the calls around it: %s", s)
	}
	rogue.Kill()
}
