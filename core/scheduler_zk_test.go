package core

import (
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/regent-sched/regent/integration/mesossim"
	"github.com/regent-sched/regent/integration/simtest"
	"github.com/regent-sched/regent/integration/testserver"
)

// The scheduler finds the leading master through ZooKeeper (zk://) and
// follows it when it fails over: the real ZooKeeper, mesos-sim publishing
// json.info_ nodes as Mesos masters do.
func TestZooKeeperMasterDetection(t *testing.T) {
	z := testserver.StartZooKeeper(t)
	sim := simtest.Start(t, 2, func(cfg *mesossim.Config) {
		cfg.Masters = 2
		cfg.ZooKeeper = z.Servers()
		cfg.ZKPath = "/mesos"
	})
	det, err := NewDetector("zk://"+z.Addr()+"/mesos", zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { det.Close() })
	store, fence := newMemoryStore(t)
	cfg := testConfig(t, store, fence)
	cfg.Detector = det
	r := start(t, cfg, nil)
	waitFor(t, settle, "tasks running via the detected leader", settled(sim, r, 2))
	id := r.s.Status().FrameworkID
	before := sim.LeaderURL()
	sim.FailoverMaster(0)
	waitFor(t, settle, "re-subscribed to the new leader", func() bool {
		fw, _ := sim.Snapshot().Framework(id)
		return sim.LeaderURL() != before && fw.Connected && r.s.Status().Subscribed
	})
	waitFor(t, settle, "settled under the new leader", settled(sim, r, 2))
	if got := sim.Snapshot().Frameworks; len(got) != 1 || got[0].Counters.TasksLaunched != 2 {
		t.Fatalf("after failover: %+v", got)
	}
}
