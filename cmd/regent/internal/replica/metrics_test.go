package replica

import (
	"bufio"
	"strconv"
	"strings"
	"testing"
	"time"
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
