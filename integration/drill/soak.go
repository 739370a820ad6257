package drill

import (
	"context"
	"math/rand/v2"
	"time"
)

// Fault is one step of a soak: it breaks something, repairs it, and
// returns a description for the log.
type Fault struct {
	Name string
	Do   func(tp *Topology, rng *rand.Rand) string
}

// Faults are the soak's repertoire, each ending with the topology whole
// again (every replica running, every path healed).
var Faults = []Fault{
	{"kill-leader", func(tp *Topology, _ *rand.Rand) string {
		l := tp.WaitLeader(time.Minute)
		l.Kill()
		tp.WaitLeader(time.Minute, l)
		l.Restart()
		return "killed " + l.ID
	}},
	{"term-leader", func(tp *Topology, _ *rand.Rand) string {
		l := tp.WaitLeader(time.Minute)
		l.Term()
		tp.WaitLeader(time.Minute, l)
		l.Restart()
		return "stopped " + l.ID + " gracefully"
	}},
	{"freeze-leader", func(tp *Topology, rng *rand.Rand) string {
		l := tp.WaitLeader(time.Minute)
		d := jitter(rng, tp.timeout()/4, 2*tp.timeout())
		l.Stop()
		time.Sleep(d)
		l.Cont()
		return "froze " + l.ID + " for " + d.String()
	}},
	{"cut-leader-store", func(tp *Topology, rng *rand.Rand) string {
		l := tp.WaitLeader(time.Minute)
		d := jitter(rng, tp.timeout()/5, 2*tp.timeout())
		l.Store.Cut()
		time.Sleep(d)
		l.Store.Heal()
		return "cut " + l.ID + " from the store for " + d.String()
	}},
	{"cut-leader-mesos", func(tp *Topology, rng *rand.Rand) string {
		l := tp.WaitLeader(time.Minute)
		d := jitter(rng, 200*time.Millisecond, 3*time.Second)
		l.Mesos.Cut()
		time.Sleep(d)
		l.Mesos.Heal()
		return "cut " + l.ID + " from Mesos for " + d.String()
	}},
	{"kill-standby", func(tp *Topology, rng *rand.Rand) string {
		l := tp.WaitLeader(time.Minute)
		var standbys []*Replica
		for _, r := range tp.Replicas {
			if r != l && r.Running() {
				standbys = append(standbys, r)
			}
		}
		if len(standbys) == 0 {
			return "no standby to kill"
		}
		s := standbys[rng.IntN(len(standbys))]
		s.Kill()
		s.Restart()
		return "killed standby " + s.ID
	}},
	{"mesos-master-failover", func(tp *Topology, rng *rand.Rand) string {
		gap := jitter(rng, 0, time.Second)
		tp.Sim.FailoverMaster(gap)
		return "failed the Mesos master over (gap " + gap.String() + ")"
	}},
}

func jitter(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
}

// timeout is the election timeout of the topology's store.
func (tp *Topology) timeout() time.Duration {
	if tp.opts.Store == "zk" {
		return tp.opts.SessionTimeout
	}
	return tp.opts.ElectionTTL
}

// Soak runs random faults from Faults, drawn from seed, for about d, waiting
// after each until a leader runs every task again, then runs the checker
// and fails on any violation. Every failure message names the seed, so
// that the schedule can be replayed.
func (tp *Topology) Soak(seed uint64, d time.Duration, tasks int) {
	tp.t.Helper()
	tp.t.Cleanup(func() {
		if tp.t.Failed() {
			tp.t.Logf("drill: soak seed %d (replay with REGENT_SOAK_SEED=%d)", seed, seed)
		}
	})
	tp.soak(seed, d, tasks)
	tp.MustPass(context.Background())
}

func (tp *Topology) soak(seed uint64, d time.Duration, tasks int) []Step {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	deadline := time.Now().Add(d)
	var steps []Step
	for n := 0; time.Now().Before(deadline); n++ {
		st := tp.Step(Faults[rng.IntN(len(Faults))], rng, tasks)
		tp.t.Logf("soak step %d: %s", n, st)
		steps = append(steps, st)
	}
	return steps
}

// waitTasks waits until Mesos runs n tasks of one framework, all running
// and acknowledged.
func (tp *Topology) waitTasks(n int, timeout time.Duration) {
	tp.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		st := tp.Sim.Snapshot()
		if len(st.Frameworks) == 1 && st.Frameworks[0].Connected && st.Frameworks[0].UnackedUpdates == 0 {
			running := 0
			for _, tk := range st.Frameworks[0].Tasks {
				if tk.State == "TASK_RUNNING" {
					running++
				}
			}
			if running == n && len(st.Frameworks[0].Tasks) == n {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tp.t.Fatalf("drill: %d running tasks not reached within %v: %+v", n, timeout, tp.Sim.Snapshot().Frameworks)
}
