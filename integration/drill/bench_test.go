package drill

import (
	"context"
	"fmt"
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
// It reports the median, the 99th percentile (the maximum below 100 runs)
// and the maximum in milliseconds.
func BenchmarkFailover(b *testing.B) {
	for _, store := range []string{"etcd", "zk"} {
		for _, mode := range []string{"graceful", "crash"} {
			b.Run(fmt.Sprintf("store=%s/%s", store, mode), func(b *testing.B) {
				tp := Start(b, Options{Store: store})
				leader := tp.WaitLeader(60 * time.Second)
				simtest.Eventually(b, 30*time.Second, "3 running tasks", simtest.Running(tp.Sim, 3))
				info, err := leader.Info(b.Context())
				if err != nil {
					b.Fatal(err)
				}
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
					tp.CheckTasks(info.Framework.ID, 3, 3)
					waitStandby(b, leader)
					leader = next
					b.StartTimer()
				}
				b.StopTimer()
				p50, p99, worst := percentiles(took)
				b.ReportMetric(0, "ns/op")
				b.ReportMetric(float64(p50.Milliseconds()), "ms-p50")
				b.ReportMetric(float64(p99.Milliseconds()), "ms-p99")
				b.ReportMetric(float64(worst.Milliseconds()), "ms-max")
			})
		}
	}
}

// waitStandby waits until a restarted replica answers and campaigns.
func waitStandby(tb testing.TB, r *Replica) {
	tb.Helper()
	simtest.Eventually(tb, 30*time.Second, r.ID+" back as a standby", func() bool {
		l, err := r.leader(tb.Context())
		return err == nil && l.Leader.ID != "" && !l.Self.Leading
	})
}

func percentiles(d []time.Duration) (p50, p99, worst time.Duration) {
	if len(d) == 0 {
		return 0, 0, 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return at(0.5), at(0.99), s[len(s)-1]
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
