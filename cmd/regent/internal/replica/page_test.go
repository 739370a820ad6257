package replica

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/regent-sched/regent/cmd/regent/internal/api"
)

var (
	// reconciliationRe is the reconciliation card's progress line.
	reconciliationRe = regexp.MustCompile(`id="reconciliation-progress">pending (\d+) · rounds (\d+)<br>last done ([^<—]+ ago)</div>`)
	// transitionRe is a row of the transitions table: when, status,
	// leader, reason.
	transitionRe = regexp.MustCompile(`<tr><td>(\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>`)
)

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// TestStatusPage: the page renders on the leader and on a standby (with the
// leader's data), shows the election, the FrameworkID, the agents and the
// tasks, reconciliation progress and its recent transitions, and works
// without a leader.
func TestStatusPage(t *testing.T) {
	w := newWorld(t, 2)
	r1 := w.start(t, w.configFor(t, "r1"), Options{})
	eventually(t, 30*time.Second, "2 running tasks", allRunning(w.sim, 2))
	r2 := w.start(t, w.configFor(t, "r2"), Options{})
	eventually(t, 10*time.Second, "r2 sees r1 lead", func() bool { return r2.Runner().Status().Leader.ID == "r1" })
	_, _, body := call(t, "GET", r1.base+"/v1/info", "")
	info := decode[api.Info](t, body)
	fwid := info.Framework.ID
	if info.Reconciliation.Active || info.Reconciliation.LastDone.IsZero() {
		t.Fatalf("the leader has not finished reconciling: %+v", info.Reconciliation)
	}

	for _, rn := range []*running{r1, r2} {
		code, hdr, page := call(t, "GET", rn.base+"/", "")
		if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
			t.Fatalf("GET / on %s = %d %s", rn.self.ID, code, hdr.Get("Content-Type"))
		}
		want := []string{`id="leader">r1<`, fwid, "TASK_RUNNING", `id="self">` + rn.self.ID + `<`, "r2", "subscribed"}
		for _, a := range w.sim.AgentIDs() {
			want = append(want, a)
		}
		for _, s := range want {
			if !strings.Contains(page, s) {
				t.Errorf("page of %s lacks %q", rn.self.ID, s)
			}
		}
		if strings.Contains(page, `id="data-error"`) {
			t.Errorf("page of %s shows an error", rn.self.ID)
		}
		// Reconciliation: the leader's first one is over (it had no task
		// to ask about when it subscribed), and the page says when.
		if !strings.Contains(page, `id="reconciliation"><span class="ok">idle</span>`) {
			t.Errorf("page of %s does not show reconciliation idle", rn.self.ID)
		}
		if m := reconciliationRe.FindStringSubmatch(page); m == nil {
			t.Errorf("page of %s lacks reconciliation progress (pending, rounds, last done)", rn.self.ID)
		} else if m[1] != "0" || m[2] != fmt.Sprint(info.Reconciliation.Rounds) {
			t.Errorf("page of %s shows %d pending after %s rounds, the leader says %d after %d",
				rn.self.ID, atoi(m[1]), m[2], info.Reconciliation.Pending, info.Reconciliation.Rounds)
		}
		// Recent transitions, this replica's own, newest first: the leader
		// was elected and leads; the standby saw r1 lead.
		want = []string{"<h2>Recent transitions of " + rn.self.ID + "</h2>", `<table id="transitions">`}
		if rn == r1 {
			want = append(want, "<td>leader</td><td>r1</td><td>elected</td>", "<td>leader (loading)</td><td>r1</td>")
		} else {
			want = append(want, "<td>standby</td><td>r1</td>")
		}
		rows := transitionRe.FindAllStringSubmatch(page, -1)
		for _, s := range want {
			if !strings.Contains(page, s) {
				t.Errorf("transitions of %s lack %q; rows: %q", rn.self.ID, s, rows)
			}
		}
		if len(rows) == 0 || !strings.HasPrefix(rows[0][2], map[bool]string{true: "leader", false: "standby"}[rn == r1]) || rows[0][3] != "r1" {
			t.Errorf("newest transition of %s: %q, want its current role under leader r1", rn.self.ID, rows)
		}
		if strings.Contains(page, "<script") {
			t.Errorf("page of %s needs JavaScript", rn.self.ID)
		}
	}
	if code, _, _ := call(t, "HEAD", r1.base+"/", ""); code != 200 {
		t.Errorf("HEAD / = %d", code)
	}

	// Without a reachable leader the page still renders and says why.
	r1.stop(t)
	r2.stop(t)
	lone := w.start(t, w.configFor(t, "r3"), Options{WrapStore: func(s persistStore) persistStore {
		return &slowLoad{Store: s, release: make(chan struct{})}
	}})
	eventually(t, 10*time.Second, "r3 leading", func() bool { return lone.Runner().Status().Leading })
	code, _, page := call(t, "GET", lone.base+"/", "")
	if code != 200 || !strings.Contains(page, "loading the state") || !strings.Contains(page, `id="data-error"`) {
		t.Errorf("page while loading = %d, lacks the reason", code)
	}
}
