package replica

import (
	"strings"
	"testing"
	"time"

	"github.com/regent-sched/regent/cmd/regent/internal/api"
)

// TestStatusPage: the page renders on the leader and on a standby (with the
// leader's data), shows the election, the FrameworkID, the agents and the
// tasks, and works without a leader.
func TestStatusPage(t *testing.T) {
	w := newWorld(t, 2)
	r1 := w.start(t, w.configFor(t, "r1"), Options{})
	eventually(t, 30*time.Second, "2 running tasks", allRunning(w.sim, 2))
	r2 := w.start(t, w.configFor(t, "r2"), Options{})
	eventually(t, 10*time.Second, "r2 sees r1 lead", func() bool { return r2.Runner().Status().Leader.ID == "r1" })
	_, _, body := call(t, "GET", r1.base+"/v1/info", "")
	fwid := decode[api.Info](t, body).Framework.ID

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
