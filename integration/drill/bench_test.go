package drill

import (
	"context"
	"fmt"
	"math"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/regent-sched/regent/integration/simtest"
)

// BenchmarkFailover times takeovers of a 3-replica topology: from the
// moment the leader is stopped (SIGTERM, "graceful") or killed (SIGKILL,
// "crash") to the moment Mesos accepted the new leader's SUBSCRIBE and its
// first RECONCILE. Run it with a fixed count, e.g.
//
//	go test -run '^$' -bench Failover -benchtime 20x ./integration/drill/
//
// It reports the median, the 90th and 99th percentiles (the 99th is the
// maximum below 100 runs) and the maximum in milliseconds.
func BenchmarkFailover(b *testing.B) {
	for _, store := range []string{"etcd", "zk"} {
		for _, mode := range []string{"graceful", "crash"} {
			b.Run(fmt.Sprintf("store=%s/%s", store, mode), func(b *testing.B) {
				tp, leader, fwid := startRunning(b, store)
				var took []time.Duration
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					t0 := time.Now()
					if mode == "crash" {
						leader.Kill()
					} else {
						leader.Term()
					}
					tk := tp.WaitTakeover(t0, 60*time.Second)
					took = append(took, tk.Reconciled.Sub(t0))
					b.StopTimer()
					next := tp.WaitLeader(30*time.Second, leader)
					leader.Restart()
					simtest.Eventually(b, 30*time.Second, "3 running tasks", simtest.Running(tp.Sim, 3))
					// Every failover keeps the framework and its tasks.
					tp.CheckTasks(fwid, 3, 3)
					waitStandby(b, leader)
					leader = next
					b.StartTimer()
				}
				b.StopTimer()
				b.ReportMetric(0, "ns/op")
				reportPercentiles(b, "ms", took)
			})
		}
	}
}

// startRunning starts the default topology on store and waits for its
// leader and 3 running tasks; it returns them with the FrameworkID.
func startRunning(b *testing.B, store string) (*Topology, *Replica, string) {
	b.Helper()
	tp := Start(b, Options{Store: store})
	leader := tp.WaitLeader(60 * time.Second)
	simtest.Eventually(b, 30*time.Second, "3 running tasks", simtest.Running(tp.Sim, 3))
	info, err := leader.Info(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	return tp, leader, info.Framework.ID
}

// waitStandby waits until a restarted replica answers and campaigns.
func waitStandby(tb testing.TB, r *Replica) {
	tb.Helper()
	simtest.Eventually(tb, 30*time.Second, r.ID+" back as a standby", func() bool {
		l, err := r.leader(tb.Context())
		return err == nil && l.Leader.ID != "" && !l.Self.Leading
	})
}

// percentiles returns the 50th, 90th and 99th percentiles of d (nearest
// rank) and its maximum.
func percentiles(d []time.Duration) (p50, p90, p99, worst time.Duration) {
	if len(d) == 0 {
		return 0, 0, 0, 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(q float64) time.Duration { return s[max(0, int(math.Ceil(q*float64(len(s))))-1)] }
	return at(0.5), at(0.9), at(0.99), s[len(s)-1]
}

// reportPercentiles reports the percentiles of d in milliseconds, as
// <unit>-p50, -p90, -p99 and -max.
func reportPercentiles(b *testing.B, unit string, d []time.Duration) {
	p50, p90, p99, worst := percentiles(d)
	for _, m := range []struct {
		name string
		v    time.Duration
	}{{"p50", p50}, {"p90", p90}, {"p99", p99}, {"max", worst}} {
		b.ReportMetric(float64(m.v.Milliseconds()), unit+"-"+m.name)
	}
}

// BenchmarkFalseFailovers counts leader changes nobody asked for while the
// machine is loaded: 4 busy shell loops per core compete with the
// replicas and the store for a fixed window, and no fault is injected.
// Short TTLs fail over faster after a crash and more often for nothing.
//
//	go test -run '^$' -bench FalseFailovers -benchtime 1x ./integration/drill/
func BenchmarkFalseFailovers(b *testing.B) {
	const window = 30 * time.Second
	cases := []struct {
		store string
		ttl   time.Duration
	}{{"etcd", 2 * time.Second}, {"etcd", 5 * time.Second}, {"zk", 4 * time.Second}, {"zk", 10 * time.Second}}
	for _, c := range cases {
		b.Run(fmt.Sprintf("store=%s/timeout=%v", c.store, c.ttl), func(b *testing.B) {
			o := Options{Store: c.store, ElectionTTL: c.ttl, SessionTimeout: c.ttl}
			tp := Start(b, o)
			tp.WaitLeader(60 * time.Second)
			simtest.Eventually(b, 30*time.Second, "3 running tasks", simtest.Running(tp.Sim, 3))
			var changes int
			for i := 0; i < b.N; i++ {
				start := time.Now()
				burn(b, 4*runtime.NumCPU(), window)
				changes += tp.Subscribes(start)
			}
			b.ReportMetric(0, "ns/op")
			// SUBSCRIBEs count leader changes and also re-subscriptions of
			// the same leader (its heartbeat watchdog): an upper bound.
			b.ReportMetric(float64(changes)/float64(b.N)/window.Minutes(), "subscribes/min")
		})
	}
}

// burn runs n busy shell loops for d (bounded: `timeout` ends them).
func burn(tb testing.TB, n int, d time.Duration) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d+10*time.Second)
	defer cancel()
	var cmds []*exec.Cmd
	for range n {
		cmd := exec.CommandContext(ctx, "timeout", strconv.Itoa(int(d.Seconds())), "sh", "-c", "while :; do :; done")
		if err := cmd.Start(); err != nil {
			tb.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		cmd.Wait()
	}
}

// BenchmarkLeaderStall freezes the leader (SIGSTOP, as a long GC pause or
// a starved CPU would) for a fraction of its TTL or session timeout and
// reports, per fraction, whether another replica took over (1) or not (0).
// The leader gives up its term TTL − Margin (etcd, Margin = TTL/4) or
// AbdicateAfter (ZooKeeper, session/2) after its last answered renewal,
// so stalls below those survive and longer ones fail over.
//
//	go test -run '^$' -bench LeaderStall -benchtime 1x ./integration/drill/
func BenchmarkLeaderStall(b *testing.B) {
	for _, c := range []struct {
		store string
		ttl   time.Duration
	}{{"etcd", 2 * time.Second}, {"zk", 4 * time.Second}} {
		b.Run(fmt.Sprintf("store=%s/timeout=%v", c.store, c.ttl), func(b *testing.B) {
			tp := Start(b, Options{Store: c.store, ElectionTTL: c.ttl, SessionTimeout: c.ttl})
			leader := tp.WaitLeader(60 * time.Second)
			for i := 0; i < b.N; i++ {
				for _, pct := range []int{25, 50, 75, 125} {
					start := time.Now()
					leader.Stop()
					time.Sleep(c.ttl * time.Duration(pct) / 100)
					leader.Cont()
					time.Sleep(c.ttl) // let a takeover, if any, happen
					next := tp.WaitLeader(30 * time.Second)
					// A change of leader, not a re-subscription: the woken
					// leader's own Mesos connection may have been dropped by
					// its heartbeat watchdog and re-subscribed.
					failed := 0.0
					if next != leader {
						failed = 1
					}
					b.ReportMetric(failed, fmt.Sprintf("failover-at-%d%%", pct))
					b.ReportMetric(float64(tp.Subscribes(start)), fmt.Sprintf("subscribes-at-%d%%", pct))
					if next != leader {
						waitStandby(b, leader)
					}
					leader = next
				}
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkZombieFencing freezes the leader (SIGSTOP) until another
// replica has taken over, then thaws it. It reports, in milliseconds,
// "replaced": from the freeze to Mesos accepting the successor's
// SUBSCRIBE and first RECONCILE; "abdicated": from the thaw to the woken
// replica reporting its term over (its work stopping or stopped); and
// "follows": from the thaw to its reporting the successor as leader. Mesos must accept no
// call of the zombie's after the takeover, or the benchmark fails.
//
//	go test -run '^$' -bench ZombieFencing -benchtime 20x ./integration/drill/
func BenchmarkZombieFencing(b *testing.B) {
	for _, store := range []string{"etcd", "zk"} {
		b.Run("store="+store, func(b *testing.B) {
			tp, leader, fwid := startRunning(b, store)
			var replaced, abdicated, follows []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				leader.Stop()
				tk := tp.WaitTakeover(t0, 60*time.Second)
				replaced = append(replaced, tk.Reconciled.Sub(t0))
				next := tp.WaitLeader(30*time.Second, leader)
				t1 := time.Now()
				leader.Cont()
				gone, known := waitStandbyOf(b, leader, next)
				abdicated = append(abdicated, gone.Sub(t1))
				follows = append(follows, known.Sub(t1))
				b.StopTimer()
				if late := tp.AcceptedAfter(tk.Subscribed, tk.StreamID); len(late) > 0 {
					b.Fatalf("run %d: Mesos accepted calls of the zombie after the takeover: %+v", i+1, late)
				}
				simtest.Eventually(b, 30*time.Second, "3 running tasks", simtest.Running(tp.Sim, 3))
				tp.CheckTasks(fwid, 3, 3)
				leader = next
				b.StartTimer()
			}
			b.StopTimer()
			b.ReportMetric(0, "ns/op")
			reportPercentiles(b, "replaced-ms", replaced)
			reportPercentiles(b, "abdicated-ms", abdicated)
			reportPercentiles(b, "follows-ms", follows)
			tp.MustPass(context.Background())
		})
	}
}

// waitStandbyOf polls r (every 10 ms) until it reports itself a standby of
// leader, and returns when it first said its term was over and when it
// first named leader.
func waitStandbyOf(b *testing.B, r, leader *Replica) (gone, known time.Time) {
	b.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		l, err := r.leader(b.Context())
		if err == nil && (!l.Self.Leading || l.Self.Stopping) && gone.IsZero() {
			gone = time.Now()
		}
		if err == nil && !l.Self.Leading && l.Leader.ID == leader.ID {
			return gone, time.Now()
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s does not report itself a standby of %s within 60s: %+v, %v", r.ID, leader.ID, l, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkColdStart10k stops every replica of a framework that runs
// 10,000 tasks (one per agent), then starts them all at once, as a full
// redeploy would. It reports, in milliseconds from the start: "subscribed"
// (Mesos accepted the new leader's SUBSCRIBE, after the election and the
// Load of the 10,000 tasks), and "reconciled" (the leader's
// reconciliation of all of them finished). The replicas are stopped
// gracefully, standbys first, so the old leader's key is gone and the
// numbers hold no lease or session expiry (BenchmarkFailover has those).
//
//	go test -run '^$' -bench ColdStart10k -benchtime 20x -timeout 60m ./integration/drill/
func BenchmarkColdStart10k(b *testing.B) {
	const tasks = 10000
	for _, store := range []string{"etcd", "zk"} {
		b.Run("store="+store, func(b *testing.B) {
			tp := Start(b, Options{Store: store, Agents: tasks, NoAckCheck: true, Flags: []string{"--log-level", "info"}})
			leader := tp.WaitLeader(2 * time.Minute)
			waitRunning(b, tp, tasks, 10*time.Minute)
			info, err := leader.Info(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			var subscribed, reconciled []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				for _, r := range tp.Replicas {
					if r != leader {
						r.Term()
					}
				}
				leader.Term()
				b.StartTimer()
				t0 := time.Now()
				for _, r := range tp.Replicas {
					r.Restart()
				}
				tk := tp.WaitTakeover(t0, 2*time.Minute)
				subscribed = append(subscribed, tk.Subscribed.Sub(t0))
				leader = tp.WaitLeader(2 * time.Minute)
				reconciled = append(reconciled, waitReconciled(b, leader, tk.Subscribed).Sub(t0))
				b.StopTimer()
				simtest.Eventually(b, 2*time.Minute, "10,000 running tasks", simtest.Running(tp.Sim, tasks))
				tp.CheckTasks(info.Framework.ID, tasks, tasks)
				for _, r := range tp.Replicas {
					if r != leader {
						waitStandby(b, r)
					}
				}
				b.StartTimer()
			}
			b.StopTimer()
			b.ReportMetric(0, "ns/op")
			reportPercentiles(b, "subscribed-ms", subscribed)
			reportPercentiles(b, "reconciled-ms", reconciled)
		})
	}
}

// waitReconciled polls the leader until a reconciliation that started at
// or after since has finished, and returns when it finished (the leader's
// clock: the same machine).
func waitReconciled(b *testing.B, leader *Replica, since time.Time) time.Time {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		info, err := leader.Info(b.Context())
		rec := info.Reconciliation
		if err == nil && !rec.Active && !rec.LastDone.IsZero() && !rec.LastDone.Add(-rec.LastDuration).Before(since.Add(-time.Second)) {
			return rec.LastDone
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not finish reconciling within 5m: %+v, %v", leader.ID, rec, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitRunning waits until Mesos runs n tasks of the framework, all
// acknowledged, logging the progress every 15 s.
func waitRunning(b *testing.B, tp *Topology, n int, timeout time.Duration) {
	b.Helper()
	start := time.Now()
	done := simtest.Running(tp.Sim, n)
	for next := start; !done(); time.Sleep(100 * time.Millisecond) {
		if time.Since(start) > timeout {
			b.Fatalf("%d running tasks not reached within %v: %s", n, timeout, runningSummary(tp))
		}
		if time.Now().After(next) {
			b.Logf("%v: %s", time.Since(start).Round(time.Second), runningSummary(tp))
			next = time.Now().Add(15 * time.Second)
		}
	}
	b.Logf("%d tasks running after %v", n, time.Since(start).Round(time.Second))
}

func runningSummary(tp *Topology) string {
	st := tp.Sim.Snapshot()
	if len(st.Frameworks) == 0 {
		return "no framework"
	}
	fw := st.Frameworks[0]
	states := map[string]int{}
	for _, tk := range fw.Tasks {
		states[tk.State]++
	}
	return fmt.Sprintf("framework connected=%v, tasks %v, %d unacked updates, %d launched", fw.Connected, states, fw.UnackedUpdates, fw.Counters.TasksLaunched)
}
