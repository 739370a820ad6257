package replica

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/regent-sched/regent/integration/mesossim"
	"github.com/regent-sched/regent/integration/simtest"
	"github.com/regent-sched/regent/integration/testserver"
)

// scrape returns the samples of /metrics by name (labels included).
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	code, hdr, body := call(t, "GET", base+"/metrics", "")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics = %d %s", code, hdr.Get("Content-Type"))
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetricsFollowTheReplica: the leader's and the standby's metrics say
// who leads; the scheduler's counters grow with what happens and survive a
// change of term.
func TestMetricsFollowTheReplica(t *testing.T) {
	w := newWorld(t, 2)
	r1 := w.start(t, w.configFor(t, "r1"), Options{})
	eventually(t, 30*time.Second, "2 running tasks", allRunning(w.sim, 2))
	r2 := w.start(t, w.configFor(t, "r2"), Options{})
	eventually(t, 10*time.Second, "r2 sees r1 lead", func() bool { return r2.Runner().Status().Leader.ID == "r1" })

	var m map[string]float64
	eventually(t, 10*time.Second, "leader metrics", func() bool {
		m = scrape(t, r1.base)
		return m["regent_is_leader"] == 1 && m["regent_subscribed"] == 1 && m["regent_ready"] == 1 &&
			m[`regent_tasks{state="TASK_RUNNING"}`] == 2 && m["regent_failover_duration_seconds_count"] == 1
	})
	for _, name := range []string{"regent_offers_received_total", "regent_acks_total", "regent_tasks_launched_total",
		"regent_store_commit_duration_seconds_count", "regent_store_commit_batch_size_count", "regent_leader_transitions_total"} {
		if m[name] < 1 {
			t.Errorf("%s = %v on the leader, want > 0", name, m[name])
		}
	}
	if m[`regent_build_info{version="dev"}`] != 1 {
		t.Errorf("regent_build_info missing: %v", m)
	}
	s := scrape(t, r2.base)
	if s["regent_is_leader"] != 0 || s["regent_leader_known"] != 1 || s["regent_subscribed"] != 0 || s["regent_ready"] != 1 {
		t.Errorf("standby metrics: is_leader %v leader_known %v subscribed %v ready %v",
			s["regent_is_leader"], s["regent_leader_known"], s["regent_subscribed"], s["regent_ready"])
	}

	// Activity moves the counters.
	acks := m["regent_acks_total"]
	agent := w.sim.AgentIDs()[0]
	if code, _, body := call(t, "POST", r1.base+"/v1/blacklist/"+agent, ""); code != 200 {
		t.Fatalf("blacklist = %d %s", code, body)
	}
	eventually(t, 10*time.Second, "acks and kills counted", func() bool {
		m = scrape(t, r1.base)
		return m["regent_acks_total"] > acks && m["regent_kills_total"] >= 1 && m[`regent_tasks{state="TASK_RUNNING"}`] == 1
	})

	// After a hand-over the new leader counts, and a failover was timed.
	r1.stop(t)
	eventually(t, 10*time.Second, "r2 leading and subscribed", func() bool {
		s = scrape(t, r2.base)
		return s["regent_is_leader"] == 1 && s["regent_subscribed"] == 1 && s["regent_failover_duration_seconds_count"] == 1
	})
	if s["regent_leader_transitions_total"] != 1 {
		t.Errorf("r2 transitions = %v, want 1", s["regent_leader_transitions_total"])
	}
}

// TestMetricsCountOffersAndReconciliation: every series of
// regent_store_errors_total exists at 0 from the start; declined offers,
// reconciliation rounds and the pending gauge exist from the start and
// move as the leader works: a Mesos master failover makes it reconcile its
// tasks, which stay pending until their agents re-register, and decline
// what the new master offers.
func TestMetricsCountOffersAndReconciliation(t *testing.T) {
	e := testserver.StartEtcd(t)
	// Agents re-register with the new master 4 s after a failover; until
	// then explicit reconciliation of their tasks gets no answer.
	sim := simtest.Start(t, 2, func(c *mesossim.Config) { c.AgentReregisterDelay = 4 * time.Second })
	w := &world{etcd: e, sim: sim, store: []string{"--etcd-endpoints", e.Endpoints()[0]}}
	r1 := w.start(t, w.configFor(t, "r1"), Options{})
	r2 := w.start(t, w.configFor(t, "r2"), Options{})

	for _, rn := range []*running{r1, r2} {
		m := scrape(t, rn.base)
		for _, op := range []string{"load", "commit"} {
			for _, kind := range []string{"fenced", "other"} {
				name := fmt.Sprintf(`regent_store_errors_total{kind=%q,op=%q}`, kind, op)
				if v, ok := m[name]; !ok || v != 0 {
					t.Errorf("%s: %s = %v (present %v), want 0 from the start", rn.self.ID, name, v, ok)
				}
			}
		}
		for _, name := range []string{"regent_offers_declined_total", "regent_reconciliation_rounds_total", "regent_reconciliation_pending"} {
			if _, ok := m[name]; !ok {
				t.Errorf("%s: %s missing from the start", rn.self.ID, name)
			}
		}
	}

	eventually(t, 30*time.Second, "2 running tasks", allRunning(sim, 2))
	leader, standby := r1, r2
	if r2.Runner().Status().Leading {
		leader, standby = r2, r1
	}
	var m map[string]float64
	eventually(t, 10*time.Second, "the leader's first reconciliation done", func() bool {
		m = scrape(t, leader.base)
		return m["regent_subscribed"] == 1 && m["regent_reconciliation_active"] == 0 && m["regent_reconciliation_pending"] == 0
	})
	declined, rounds := m["regent_offers_declined_total"], m["regent_reconciliation_rounds_total"]

	sim.FailoverMaster(0)
	eventually(t, 10*time.Second, "2 tasks pending reconciliation", func() bool {
		m = scrape(t, leader.base)
		return m["regent_reconciliation_active"] == 1 && m["regent_reconciliation_pending"] == 2
	})
	if m["regent_reconciliation_rounds_total"] <= rounds {
		t.Errorf("reconciliation rounds %v while reconciling, %v before", m["regent_reconciliation_rounds_total"], rounds)
	}
	eventually(t, 30*time.Second, "reconciliation done", func() bool {
		m = scrape(t, leader.base)
		return m["regent_reconciliation_active"] == 0 && m["regent_reconciliation_pending"] == 0
	})
	// The new master offers what the running tasks leave: the leader
	// declines it (the launches' filters died with the old master).
	eventually(t, 10*time.Second, "more offers declined", func() bool {
		m = scrape(t, leader.base)
		return m["regent_offers_declined_total"] > declined
	})
	// The standby does none of this.
	s := scrape(t, standby.base)
	for _, name := range []string{"regent_offers_declined_total", "regent_reconciliation_rounds_total", "regent_reconciliation_pending"} {
		if s[name] != 0 {
			t.Errorf("standby %s: %s = %v, want 0", standby.self.ID, name, s[name])
		}
	}
}
