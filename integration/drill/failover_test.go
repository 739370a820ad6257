package drill

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/regent-sched/regent/integration/simtest"
)

func stores(t *testing.T, f func(t *testing.T, store string)) {
	for _, s := range []string{"etcd", "zk"} {
		t.Run(s, func(t *testing.T) { f(t, s) })
	}
}

// firstLeader waits for the first leader and its 3 tasks, and returns it
// with the FrameworkID.
func firstLeader(t *testing.T, tp *Topology) (*Replica, string) {
	t.Helper()
	return leaderWithTasks(t, tp, 3)
}

// leaderWithTasks waits for a leader running n tasks.
func leaderWithTasks(t *testing.T, tp *Topology, n int) (*Replica, string) {
	t.Helper()
	l := tp.WaitLeader(60 * time.Second)
	simtest.Eventually(t, 30*time.Second, "running tasks", simtest.Running(tp.Sim, n))
	info, err := l.Info(context.Background())
	if err != nil || info.Framework.ID == "" {
		t.Fatalf("info of %s: %+v %v", l.ID, info, err)
	}
	return l, info.Framework.ID
}

// TestFailoversKeepTheFramework crashes and stops leaders in turn: every new
// leader re-subscribes with the same FrameworkID, reconciles at once, and
// no task is lost or launched twice.
func TestFailoversKeepTheFramework(t *testing.T) {
	stores(t, func(t *testing.T, store string) {
		tp := Start(t, Options{Store: store})
		leader, fwid := firstLeader(t, tp)
		for i, crash := range []bool{true, false, true, false} {
			t0 := time.Now()
			if crash {
				leader.Kill()
			} else {
				leader.Term()
			}
			tk := tp.WaitTakeover(t0, 30*time.Second)
			next := tp.WaitLeader(30*time.Second, leader)
			if late := tp.AcceptedAfter(tk.Subscribed, tk.StreamID); len(late) > 0 {
				t.Fatalf("round %d: Mesos accepted calls from the old leader after the takeover: %+v", i, late)
			}
			info, err := next.Info(context.Background())
			if err != nil || info.Framework.ID != fwid {
				t.Fatalf("round %d: new leader %s has FrameworkID %q (%v), want %q", i, next.ID, info.Framework.ID, err, fwid)
			}
			simtest.Eventually(t, 30*time.Second, "3 running tasks", simtest.Running(tp.Sim, 3))
			tp.CheckTasks(fwid, 3, 3)
			t.Logf("round %d (%s): %s -> %s, subscribed after %v, reconciling after %v", i,
				map[bool]string{true: "crash", false: "graceful"}[crash], leader.ID, next.ID,
				tk.Subscribed.Sub(t0).Round(time.Millisecond), tk.Reconciled.Sub(t0).Round(time.Millisecond))
			leader.Restart()
			leader = next
		}
		tp.MustPass(context.Background())
	})
}

// TestZombieLeaderStaysDeposed freezes the leader (SIGSTOP) until another
// replica has taken over, then thaws it: the old leader notices that its
// term is over before it acts, never subscribes again as leader, gets no
// call accepted, and becomes a standby.
func TestZombieLeaderStaysDeposed(t *testing.T) {
	stores(t, func(t *testing.T, store string) {
		tp := Start(t, Options{Store: store})
		zombie, fwid := firstLeader(t, tp)
		t0 := time.Now()
		zombie.Stop()
		tk := tp.WaitTakeover(t0, 30*time.Second)
		next := tp.WaitLeader(30*time.Second, zombie)
		zombie.Cont()
		// Give the zombie time to act on its stale view, if it would.
		deadline := time.Now().Add(40 * time.Second)
		for {
			l, err := zombie.leader(context.Background())
			if err == nil && !l.Self.Leading && l.Leader.ID == next.ID {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the zombie does not report itself a standby of %s within 40s: %+v, %v (running: %v)\n%s",
					next.ID, l, err, zombie.Running(), tailLines(zombie.Log(), 60))
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(time.Second)
		if n := tp.Subscribes(tk.Subscribed); n != 0 {
			t.Fatalf("%d SUBSCRIBEs after the takeover: the zombie subscribed again", n)
		}
		if late := tp.AcceptedAfter(tk.Subscribed, tk.StreamID); len(late) > 0 {
			t.Fatalf("Mesos accepted calls from the zombie after the takeover: %+v", late)
		}
		if l, err := tp.Leader(context.Background()); err != nil || l != next {
			t.Fatalf("leader after the zombie woke: %v %v, want %s", l, err, next.ID)
		}
		// The takeover closed the frozen zombie's stream ("Framework failed
		// over"); a SUBSCRIBE from the zombie would close the new one too.
		if st := tp.Sim.Snapshot(); st.Frameworks[0].Counters.FailedOver != 1 {
			t.Fatalf("streams failed over: %d, want 1", st.Frameworks[0].Counters.FailedOver)
		}
		tp.CheckTasks(fwid, 3, 3)
		if !strings.Contains(zombie.Log(), "term over") {
			t.Errorf("the zombie's log does not say its term ended:\n%s", tailLines(zombie.Log(), 40))
		}
		tp.MustPass(context.Background())
	})
}
