package drill

import (
	"context"
	"testing"
	"time"

	"github.com/regent-sched/regent/integration/simtest"
)

// TestStoreCutDeposesTheLeader cuts the leader off from the store (the
// store and the other replicas carry on): it stops acting before another
// replica takes over, and once the path heals it is a standby.
func TestStoreCutDeposesTheLeader(t *testing.T) {
	stores(t, func(t *testing.T, store string) {
		tp := Start(t, Options{Store: store})
		old, fwid := firstLeader(t, tp)
		t0 := time.Now()
		old.Store.Cut()
		tk := tp.WaitTakeover(t0, 30*time.Second)
		next := tp.WaitLeader(30*time.Second, old)
		if late := tp.AcceptedAfter(tk.Subscribed, tk.StreamID); len(late) > 0 {
			t.Fatalf("Mesos accepted calls from the cut-off leader after the takeover: %+v", late)
		}
		info, err := next.Info(context.Background())
		if err != nil || info.Framework.ID != fwid {
			t.Fatalf("new leader %s: FrameworkID %q (%v), want %q", next.ID, info.Framework.ID, err, fwid)
		}
		old.Store.Heal()
		simtest.Eventually(t, 30*time.Second, old.ID+" a standby again", func() bool {
			l, err := old.leader(context.Background())
			return err == nil && !l.Self.Leading && l.Leader.ID == next.ID
		})
		simtest.Eventually(t, 30*time.Second, "3 running tasks", simtest.Running(tp.Sim, 3))
		tp.CheckTasks(fwid, 3, 3)
		if n := tp.Subscribes(tk.Subscribed); n != 0 {
			t.Fatalf("%d SUBSCRIBEs after the takeover", n)
		}
		tp.MustPass(context.Background())
	})
}

// TestMesosCutKeepsTheLeader cuts the leader off from Mesos only: it keeps
// its leadership (the store is fine), re-subscribes with the same
// FrameworkID when the path heals, and reconciles; nobody else subscribes.
func TestMesosCutKeepsTheLeader(t *testing.T) {
	stores(t, func(t *testing.T, store string) {
		tp := Start(t, Options{Store: store})
		leader, fwid := firstLeader(t, tp)
		t0 := time.Now()
		leader.Mesos.Cut()
		simtest.Eventually(t, 10*time.Second, "the framework disconnected", func() bool {
			st := tp.Sim.Snapshot()
			return len(st.Frameworks) == 1 && !st.Frameworks[0].Connected
		})
		time.Sleep(time.Second)
		leader.Mesos.Heal()
		tk := tp.WaitTakeover(t0, 60*time.Second)
		if l := tp.WaitLeader(30 * time.Second); l != leader {
			t.Fatalf("leader changed to %s over a Mesos outage", l.ID)
		}
		if n := tp.Subscribes(t0); n != 1 {
			t.Fatalf("%d SUBSCRIBEs after the cut, want the leader's one", n)
		}
		simtest.Eventually(t, 30*time.Second, "3 running tasks", simtest.Running(tp.Sim, 3))
		tp.CheckTasks(fwid, 3, 3)
		tp.MustPass(context.Background())
		t.Logf("re-subscribed %v after the cut (1 s outage)", tk.Subscribed.Sub(t0).Round(time.Millisecond))
	})
}

// TestShortStoreBlipIsRiddenOut: a store outage well inside the leader's
// guaranteed slack (5/12 TTL for etcd, 3/8 of the session for ZooKeeper;
// the defaults here, 5 s and 10 s, leave ample room on a loaded machine)
// changes nothing: no failover, no new subscription.
func TestShortStoreBlipIsRiddenOut(t *testing.T) {
	stores(t, func(t *testing.T, store string) {
		tp := Start(t, Options{Store: store, ElectionTTL: 5 * time.Second, SessionTimeout: 10 * time.Second})
		leader, fwid := firstLeader(t, tp)
		blip := 500 * time.Millisecond // etcd: slack 2.1 s
		if store == "zk" {
			blip = time.Second // slack 3.75 s
		}
		t0 := time.Now()
		leader.Store.Cut()
		time.Sleep(blip)
		leader.Store.Heal()
		time.Sleep(tp.timeout()/2 + time.Second) // past any deadline the blip could have caused
		if n := tp.Subscribes(t0); n != 0 {
			t.Fatalf("%d SUBSCRIBEs after a %v store blip", n, blip)
		}
		if l := tp.WaitLeader(10 * time.Second); l != leader {
			t.Fatalf("leader changed to %s after a %v blip", l.ID, blip)
		}
		tp.CheckTasks(fwid, 3, 3)
		tp.MustPass(context.Background())
	})
}
