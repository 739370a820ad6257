package drill

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/regent-sched/regent/integration/simtest"
	"github.com/regent-sched/regent/integration/testserver"
)

// noneReady reports whether no live replica says it is the ready leader.
func noneReady(tp *Topology) func() bool {
	return func() bool {
		for _, r := range tp.Replicas {
			if !r.Running() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			l, err := r.leader(ctx)
			cancel()
			if err == nil && l.Self.Ready {
				return false
			}
		}
		return true
	}
}

// candidate reports whether asked lists r among the replicas campaigning
// (GET /v1/replicas).
func candidate(asked, r *Replica) func() bool {
	return func() bool {
		var rs struct {
			Replicas []struct {
				ID string `json:"id"`
			} `json:"replicas"`
		}
		if err := asked.get(context.Background(), "/v1/replicas", &rs); err != nil {
			return false
		}
		for _, c := range rs.Replicas {
			if c.ID == r.ID {
				return true
			}
		}
		return false
	}
}

// recovered waits until l leads with FrameworkID fwid and Mesos runs n
// tasks (no more launched than launched), then runs the checker.
func recovered(t *testing.T, tp *Topology, l *Replica, fwid string, n, launched int) {
	t.Helper()
	info, err := l.Info(context.Background())
	if err != nil || info.Framework.ID != fwid {
		t.Fatalf("leader %s: FrameworkID %q (%v), want %q", l.ID, info.Framework.ID, err, fwid)
	}
	simtest.Eventually(t, 30*time.Second, "running tasks", simtest.Running(tp.Sim, n))
	tp.CheckTasks(fwid, n, launched)
	tp.MustPass(context.Background())
}

// member is one server of the store's cluster.
type member interface{ Kill() }

// storeCluster returns the store's own leader, another member, and a
// function that restarts killed members together (a ZooKeeper member
// serves again only once a quorum runs).
func storeCluster(tp *Topology) (leader, other member, restart func(...member)) {
	if tp.Etcd != nil {
		l := tp.Etcd.WaitLeader(10 * time.Second)
		for _, m := range tp.Etcd.Members() {
			if m != l {
				other = m
			}
		}
		return l, other, func(ms ...member) {
			for _, m := range ms {
				m.(*testserver.EtcdMember).Restart()
			}
		}
	}
	l := tp.ZKEnsemble.WaitLeader(10 * time.Second)
	for _, m := range tp.ZKEnsemble.Members() {
		if m != l {
			other = m
		}
	}
	return l, other, func(ms ...member) {
		zs := make([]*testserver.ZooKeeper, len(ms))
		for i, m := range ms {
			zs[i] = m.(*testserver.ZooKeeper)
		}
		tp.ZKEnsemble.Restart(zs...)
	}
}

// TestStoreQuorumLossAndRecovery kills members of the store's cluster (3
// etcd members, or a 3-server ZooKeeper ensemble) under a running
// topology: one member, the store's own leader, changes nothing that
// matters; a second (the quorum is lost) leaves no regent replica leading
// and no Mesos call accepted, for as long as it lasts; both back, a
// leader emerges with the same FrameworkID and the same tasks, and no
// replica was restarted.
func TestStoreQuorumLossAndRecovery(t *testing.T) {
	stores(t, func(t *testing.T, store string) {
		o := Options{Store: store, EtcdMembers: 3}
		if store == "zk" {
			o = Options{Store: store, ZKMembers: 3}
		}
		tp := Start(t, o)
		_, fwid := firstLeader(t, tp)
		pids := map[string]int{}
		for _, r := range tp.Replicas {
			pids[r.ID] = r.PID()
		}
		first, second, restart := storeCluster(tp)
		first.Kill()
		tp.WaitLeader(time.Minute)
		simtest.Eventually(t, 30*time.Second, "3 running tasks with one member down", simtest.Running(tp.Sim, 3))
		tp.MustPass(context.Background())

		second.Kill()
		// The leader steps down when it can no longer renew its term.
		simtest.Eventually(t, tp.timeout()+10*time.Second, "no replica leads without a quorum", noneReady(tp))
		quiet := time.Now()
		time.Sleep(2 * tp.timeout())
		if calls := tp.AcceptedAfter(quiet, ""); len(calls) > 0 {
			t.Fatalf("Mesos accepted %d calls while the store had no quorum: %+v", len(calls), calls)
		}
		if !noneReady(tp)() {
			t.Fatal("a replica leads while the store has no quorum")
		}

		t0 := time.Now()
		restart(second, first)
		tp.WaitTakeover(t0, time.Minute)
		recovered(t, tp, tp.WaitLeader(time.Minute), fwid, 3, 3)
		for _, r := range tp.Replicas {
			if r.PID() != pids[r.ID] || !r.Running() {
				t.Errorf("%s was restarted or exited (pid %d, was %d)", r.ID, r.PID(), pids[r.ID])
			}
		}
	})
}

// TestZooKeeperServerRestart kills the ZooKeeper server (SIGKILL) and
// starts it again after longer than the session timeout: the leader stops
// acting while cut off, and once the server is back (it restores the
// sessions from its log) a leader emerges with no replica restarted.
func TestZooKeeperServerRestart(t *testing.T) {
	tp := Start(t, Options{Store: "zk"})
	_, fwid := firstLeader(t, tp)
	pids := map[string]int{}
	for _, r := range tp.Replicas {
		pids[r.ID] = r.PID()
	}
	tp.ZooKeeper.Kill()
	simtest.Eventually(t, tp.opts.SessionTimeout+10*time.Second, "no replica leads while ZooKeeper is down", noneReady(tp))
	quiet := time.Now()
	time.Sleep(tp.opts.SessionTimeout)
	if calls := tp.AcceptedAfter(quiet, ""); len(calls) > 0 {
		t.Fatalf("Mesos accepted %d calls while ZooKeeper was down: %+v", len(calls), calls)
	}
	t0 := time.Now()
	tp.ZooKeeper.Restart()
	tp.WaitTakeover(t0, time.Minute)
	recovered(t, tp, tp.WaitLeader(time.Minute), fwid, 3, 3)
	for _, r := range tp.Replicas {
		if r.PID() != pids[r.ID] || !r.Running() {
			t.Errorf("%s was restarted or exited", r.ID)
		}
	}
}

// TestExpiredCampaignContendsAgain: a standby cut off from the store for
// longer than its session (etcd lease, ZooKeeper session) loses its
// candidacy while it waits; once the path heals it must campaign again
// (the etcd "zombie candidate" trap), so that it takes over when the
// leader dies.
func TestExpiredCampaignContendsAgain(t *testing.T) {
	stores(t, func(t *testing.T, store string) {
		tp := Start(t, Options{Store: store, Replicas: 2})
		a, fwid := firstLeader(t, tp)
		b := tp.Replicas[0]
		if b == a {
			b = tp.Replicas[1]
		}
		b.Store.Cut()
		time.Sleep(tp.timeout() + tp.timeout()/2)
		b.Store.Heal()
		simtest.Eventually(t, 30*time.Second, b.ID+" a candidate again", candidate(a, b))
		t0 := time.Now()
		a.Kill()
		tp.WaitTakeover(t0, 30*time.Second)
		if l := tp.WaitLeader(30*time.Second, a); l != b {
			t.Fatalf("leader %s, want %s", l.ID, b.ID)
		}
		recovered(t, tp, b, fwid, 3, 3)
	})
}

// TestStoreTimeoutDuringTakeover: the replica elected after the leader's
// crash finds the store hung while it loads the state. It must give the
// term up and stay in the election (a replica left out of it needed a
// restart by hand in another HA scheduler); a leader emerges, and no
// replica is restarted.
func TestStoreTimeoutDuringTakeover(t *testing.T) {
	stores(t, func(t *testing.T, store string) {
		// A longer election timeout leaves room for the latency below
		// (an etcd leader renews every TTL/3 and must have renewed within
		// 3/4 TTL: with 2 s it tolerates about 400 ms of round trip).
		tp := Start(t, Options{Store: store, ElectionTTL: 4 * time.Second, SessionTimeout: 6 * time.Second,
			Flags: []string{"--load-timeout", "1s"}})
		old, fwid := firstLeader(t, tp)
		var standbys []*Replica
		for _, r := range tp.Replicas {
			if r != old {
				standbys = append(standbys, r)
			}
		}
		// Latency on the standbys' store paths widens the load into a
		// window the drill can see.
		for _, r := range standbys {
			r.Store.Delay(150 * time.Millisecond)
		}
		t0 := time.Now()
		old.Kill()
		var hung *Replica
		deadline := time.Now().Add(30 * time.Second)
		for hung == nil && time.Now().Before(deadline) {
			for _, r := range standbys {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				l, err := r.leader(ctx)
				cancel()
				if err == nil && l.Self.Leading && !l.Self.Ready {
					r.Store.Stall()
					hung = r
					break
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		if hung == nil {
			t.Fatal("no standby was seen loading the state")
		}
		for _, r := range standbys {
			r.Store.Delay(0)
		}
		simtest.Eventually(t, 30*time.Second, hung.ID+" gave the term up", func() bool {
			return strings.Contains(hung.Log(), "load state")
		})
		time.Sleep(tp.timeout())
		hung.Store.Heal()
		tp.WaitTakeover(t0, time.Minute)
		l := tp.WaitLeader(time.Minute, old)
		simtest.Eventually(t, 30*time.Second, hung.ID+" back in the election", candidate(l, hung))
		if !hung.Running() {
			t.Fatalf("%s exited", hung.ID)
		}
		recovered(t, tp, l, fwid, 3, 3)
	})
}
