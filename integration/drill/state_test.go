package drill

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/regent-sched/regent/integration/mesossim"
	"github.com/regent-sched/regent/integration/simtest"
)

// TestColdRestartOfEveryReplica kills every replica at once and starts
// them again: they find the FrameworkID and the tasks in the store, and
// nothing is launched again.
func TestColdRestartOfEveryReplica(t *testing.T) {
	stores(t, func(t *testing.T, store string) {
		tp := Start(t, Options{Store: store})
		_, fwid := firstLeader(t, tp)
		for _, r := range tp.Replicas {
			r.Kill()
		}
		t0 := time.Now()
		for _, r := range tp.Replicas {
			r.Restart()
		}
		tp.WaitTakeover(t0, time.Minute)
		recovered(t, tp, tp.WaitLeader(time.Minute), fwid, 3, 3)
	})
}

// TestLeaderReturnsToNewerState: A leads; A freezes and B takes over and
// changes the state (blacklists an agent, whose task is killed); B dies
// and A, long thawed, leads again. A must act on B's state (it reloads
// from the store, never its own memory): the agent stays empty.
func TestLeaderReturnsToNewerState(t *testing.T) {
	stores(t, func(t *testing.T, store string) {
		tp := Start(t, Options{Store: store, Replicas: 2})
		a, fwid := firstLeader(t, tp)
		t0 := time.Now()
		a.Stop()
		tp.WaitTakeover(t0, 30*time.Second)
		b := tp.WaitLeader(30*time.Second, a)
		a.Cont()

		agent := tp.Sim.AgentIDs()[0]
		if code, body, err := b.Do(context.Background(), "POST", "/v1/blacklist/"+agent); err != nil || code != 200 {
			t.Fatalf("blacklist on B: %d %s %v", code, body, err)
		}
		simtest.Eventually(t, 20*time.Second, "2 running tasks", simtest.Running(tp.Sim, 2))
		simtest.Eventually(t, 20*time.Second, "A a standby", func() bool {
			l, err := a.leader(context.Background())
			return err == nil && !l.Self.Leading && l.Leader.ID == b.ID
		})

		t1 := time.Now()
		b.Kill()
		tp.WaitTakeover(t1, 30*time.Second)
		if l := tp.WaitLeader(30*time.Second, b); l != a {
			t.Fatalf("leader %s, want %s", l.ID, a.ID)
		}
		time.Sleep(time.Second) // offers from the blacklisted agent keep coming
		simtest.Eventually(t, 20*time.Second, "2 running tasks under A", simtest.Running(tp.Sim, 2))
		for _, tk := range tp.Sim.Snapshot().Frameworks[0].Tasks {
			if tk.AgentID == agent && !terminal(tk.State) {
				t.Fatalf("A relaunched on the agent B blacklisted: %+v", tk)
			}
		}
		code, body, err := a.Do(context.Background(), "GET", "/v1/blacklist")
		var bl struct {
			Agents []struct {
				ID string `json:"id"`
			} `json:"agents"`
		}
		if err != nil || code != 200 || json.Unmarshal([]byte(body), &bl) != nil || len(bl.Agents) != 1 || bl.Agents[0].ID != agent {
			t.Fatalf("A's blacklist: %d %s %v", code, body, err)
		}
		tp.CheckTasks(fwid, 2, 3)
		tp.MustPass(context.Background())
	})
}

// TestMasterFailoverLosesALaunch: a Mesos master failover loses a launch
// on its way to the agent; reconciliation must resolve the task (no task
// stays STAGING forever) and the framework relaunches it.
func TestMasterFailoverLosesALaunch(t *testing.T) {
	stores(t, func(t *testing.T, store string) {
		tp := Start(t, Options{Store: store, Replicas: 2, Agents: 2, Sim: func(c *mesossim.Config) {
			c.LaunchDelay = 500 * time.Millisecond
		}})
		_, fwid := leaderWithTasks(t, tp, 2)
		agent := tp.Sim.AgentIDs()[0]
		tp.Sim.HoldLaunches(true)
		// Free the agent's slot: its task is killed and a new launch follows,
		// held on its way to the agent.
		l := tp.WaitLeader(30 * time.Second)
		if code, body, err := l.Do(context.Background(), "POST", "/v1/blacklist/"+agent); err != nil || code != 200 {
			t.Fatalf("blacklist: %d %s %v", code, body, err)
		}
		if code, body, err := l.Do(context.Background(), "DELETE", "/v1/blacklist/"+agent); err != nil || code != 200 {
			t.Fatalf("unblacklist: %d %s %v", code, body, err)
		}
		simtest.Eventually(t, 20*time.Second, "a launch held on its way", func() bool {
			for _, tk := range tp.Sim.Snapshot().Frameworks[0].Tasks {
				if tk.State == "TASK_STAGING" {
					return true
				}
			}
			return false
		})
		tp.Sim.FailoverMaster(100 * time.Millisecond)
		tp.Sim.HoldLaunches(false)
		simtest.Eventually(t, time.Minute, "2 running tasks after the lost launch", simtest.Running(tp.Sim, 2))
		if st := tp.Sim.Snapshot(); st.Stats.LaunchesLost == 0 {
			t.Fatalf("the master failover lost no launch: %+v", st.Stats)
		}
		tp.CheckTasks(fwid, 2, 4)
		tp.MustPass(context.Background())
	})
}

// TestFirstStartOfManyReplicasAtOnce: five replicas start together on an
// empty store. Exactly one registers the framework (Mesos never knew
// another), and the FrameworkID in the store is that one.
func TestFirstStartOfManyReplicasAtOnce(t *testing.T) {
	stores(t, func(t *testing.T, store string) {
		tp := Start(t, Options{Store: store, Replicas: 5})
		_, fwid := firstLeader(t, tp)
		if st := tp.Sim.Snapshot(); len(st.Frameworks)+len(st.CompletedFrameworks) != 1 {
			t.Fatalf("Mesos registered %s (completed %v), want one framework", frameworkIDs(st), st.CompletedFrameworks)
		}
		snap, err := tp.acks.store.Load(context.Background())
		if err != nil || snap.FrameworkID != fwid {
			t.Fatalf("the store holds FrameworkID %q (%v), want %q", snap.FrameworkID, err, fwid)
		}
		tp.CheckTasks(fwid, 3, 3)
		tp.MustPass(context.Background())
	})
}
