package replica

import (
	"context"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/regent-sched/regent/cmd/regent/internal/api"
	"github.com/regent-sched/regent/cmd/regent/internal/fleet"
	"github.com/regent-sched/regent/ha"
)

// TestAPIOnTheLeader drives every endpoint of a single replica, good and
// bad input alike.
func TestAPIOnTheLeader(t *testing.T) {
	w := newWorld(t, 3)
	r := w.start(t, w.configFor(t, "r1"), Options{})
	eventually(t, 30*time.Second, "3 running tasks", allRunning(w.sim, 3))

	code, _, body := call(t, "GET", r.base+"/healthz", "")
	if code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	eventually(t, 10*time.Second, "/readyz 200", func() bool {
		code, _, _ := call(t, "GET", r.base+"/readyz", "")
		return code == 200
	})

	// Mesos may count a task RUNNING a moment before the scheduler has
	// committed that update: wait for the scheduler's view.
	eventually(t, 10*time.Second, "the leader's state shows 3 running tasks", func() bool {
		_, _, body := call(t, "GET", r.base+"/v1/info", "")
		return decode[api.Info](t, body).TasksByState["TASK_RUNNING"] == 3
	})
	code, hdr, body := call(t, "GET", r.base+"/v1/info", "")
	info := decode[api.Info](t, body)
	if code != 200 || hdr.Get(api.HeaderServedBy) != "r1" || info.Framework.ID == "" || !info.Subscribed ||
		info.Tasks != 3 || info.TasksByState["TASK_RUNNING"] != 3 || info.Leader.ID != "r1" ||
		info.Task.CPUs != 0.1 || info.Store.Kind != "etcd" || info.Framework.Name != "regent-test" {
		t.Errorf("/v1/info = %d %s", code, body)
	}

	code, _, body = call(t, "GET", r.base+"/v1/tasks", "")
	tasks := decode[api.Tasks](t, body)
	if code != 200 || len(tasks.Tasks) != 3 {
		t.Fatalf("/v1/tasks = %d %s", code, body)
	}
	code, _, body = call(t, "GET", r.base+"/v1/agents", "")
	agents := decode[api.Agents](t, body)
	if code != 200 || len(agents.Agents) != 3 || agents.Agents[0].TaskState != "TASK_RUNNING" {
		t.Fatalf("/v1/agents = %d %s", code, body)
	}
	victim := agents.Agents[0]

	code, _, body = call(t, "GET", r.base+"/v1/leader", "")
	l := decode[api.Leader](t, body)
	if code != 200 || l.Leader.ID != "r1" || !l.Self.Leading || !l.Self.Ready || l.Self.Term != l.Leader.Token {
		t.Errorf("/v1/leader = %d %s", code, body)
	}
	code, _, body = call(t, "GET", r.base+"/v1/replicas", "")
	if reps := decode[api.Replicas](t, body); code != 200 || len(reps.Replicas) != 1 || reps.Replicas[0].ID != "r1" ||
		reps.Replicas[0].Address != r.base {
		t.Errorf("/v1/replicas = %d %s", code, body)
	}

	// Blacklisting kills the agent's task and keeps the agent empty.
	code, _, body = call(t, "POST", r.base+"/v1/blacklist/"+victim.ID, `{"reason":"disk failing"}`)
	res := decode[fleet.BlacklistResult](t, body)
	if code != 200 || !res.Changed || res.KilledTask != victim.TaskID || !res.Agent.Blacklisted || res.Agent.Reason != "disk failing" {
		t.Fatalf("POST blacklist = %d %s", code, body)
	}
	eventually(t, 20*time.Second, "2 tasks after the blacklist", allRunning(w.sim, 2))
	code, _, body = call(t, "POST", r.base+"/v1/blacklist/"+victim.ID, "")
	if res := decode[fleet.BlacklistResult](t, body); code != 200 || res.Changed {
		t.Errorf("POST blacklist again = %d %s: want 200 and no change", code, body)
	}
	code, _, body = call(t, "GET", r.base+"/v1/blacklist", "")
	if bl := decode[api.Agents](t, body); code != 200 || len(bl.Agents) != 1 || bl.Agents[0].ID != victim.ID {
		t.Errorf("GET blacklist = %d %s", code, body)
	}
	time.Sleep(500 * time.Millisecond) // offers keep coming: the agent must stay empty
	if !allRunning(w.sim, 2)() {
		t.Errorf("a task came back on the blacklisted agent: %+v", w.sim.Snapshot().Frameworks)
	}
	code, _, body = call(t, "DELETE", r.base+"/v1/blacklist/"+victim.ID, "")
	if res := decode[fleet.BlacklistResult](t, body); code != 200 || !res.Changed || res.Agent.Blacklisted {
		t.Errorf("DELETE blacklist = %d %s", code, body)
	}
	eventually(t, 20*time.Second, "3 tasks after the unblacklist", allRunning(w.sim, 3))
	code, _, body = call(t, "DELETE", r.base+"/v1/blacklist/"+victim.ID, "")
	if res := decode[fleet.BlacklistResult](t, body); code != 200 || res.Changed {
		t.Errorf("DELETE blacklist again = %d %s: want 200 and no change", code, body)
	}

	bad := []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"POST", "/v1/blacklist/no-such-agent", "", 404, "no-such-agent"},
		{"DELETE", "/v1/blacklist/no-such-agent", "", 404, "no-such-agent"},
		{"POST", "/v1/blacklist/bad%20id", "", 400, "bad id"},
		{"POST", "/v1/blacklist/" + strings.Repeat("a", 300), "", 400, "255"},
		{"POST", "/v1/blacklist/" + victim.ID, `{"reason":`, 400, "body"},
		{"POST", "/v1/blacklist/" + victim.ID, `{"why":"x"}`, 400, "unknown field"},
		{"POST", "/v1/blacklist/" + victim.ID, `{"reason":"a"} {"reason":"b"}`, 400, "one JSON object"},
		{"POST", "/v1/blacklist/" + victim.ID, `{"reason":"` + strings.Repeat("x", 2000) + `"}`, 400, "1024"},
		{"POST", "/v1/blacklist/" + victim.ID, `{"reason":"` + strings.Repeat("x", 70000) + `"}`, 413, "body"},
		{"PUT", "/v1/blacklist/" + victim.ID, "", 405, "POST or DELETE"},
		{"POST", "/v1/tasks", "", 405, "use GET"},
		{"DELETE", "/v1/info", "", 405, "use GET"},
		{"GET", "/v1/nothing", "", 404, "/v1/nothing"},
		{"GET", "/v2/info", "", 404, "status page"},
	}
	for _, tc := range bad {
		code, hdr, body := call(t, tc.method, r.base+tc.path, tc.body)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s %s = %d %s, want %d containing %q", tc.method, tc.path, code, body, tc.code, tc.want)
		}
		if strings.HasPrefix(tc.path, "/v1/") && hdr.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: Content-Type %q, want JSON", tc.method, tc.path, hdr.Get("Content-Type"))
		}
	}
	if len(w.sim.Snapshot().Frameworks[0].Tasks) != 3 {
		t.Error("bad requests changed the tasks")
	}
	if fw := w.sim.Snapshot().Frameworks[0]; fw.Counters.DuplicateTaskIDs != 0 {
		t.Errorf("duplicate task ids: %+v", fw.Counters)
	}
}

// TestStandbyForwardsToTheLeader: every replica answers; a standby's answer
// comes from the leader, writes through it are applied once, and a request
// already forwarded is never forwarded again.
func TestStandbyForwardsToTheLeader(t *testing.T) {
	w := newWorld(t, 2)
	r1 := w.start(t, w.configFor(t, "r1"), Options{})
	eventually(t, 30*time.Second, "2 running tasks", allRunning(w.sim, 2))
	r2 := w.start(t, w.configFor(t, "r2"), Options{})
	eventually(t, 10*time.Second, "r2 sees r1 lead", func() bool { return r2.Runner().Status().Leader.ID == "r1" })

	code, hdr, body := call(t, "GET", r2.base+"/v1/info", "")
	if code != 200 || hdr.Get(api.HeaderServedBy) != "r1" || decode[api.Info](t, body).Tasks != 2 {
		t.Errorf("standby /v1/info = %d served by %q: %s", code, hdr.Get(api.HeaderServedBy), body)
	}
	code, _, body = call(t, "GET", r2.base+"/v1/leader", "")
	if l := decode[api.Leader](t, body); code != 200 || l.Leader.ID != "r1" || l.Self.ID != "r2" || l.Self.Leading {
		t.Errorf("standby /v1/leader = %d %s", code, body)
	}
	agents := decode[api.Agents](t, func() string { _, _, b := call(t, "GET", r2.base+"/v1/agents", ""); return b }())
	id := agents.Agents[1].ID
	code, hdr, body = call(t, "POST", r2.base+"/v1/blacklist/"+id, `{"reason":"via standby"}`)
	if res := decode[fleet.BlacklistResult](t, body); code != 200 || !res.Changed || hdr.Get(api.HeaderServedBy) != "r1" {
		t.Fatalf("POST via standby = %d %s", code, body)
	}
	eventually(t, 20*time.Second, "1 task left", allRunning(w.sim, 1))
	// A client that waits for 100 Continue gets it once: the standby's own
	// server sends it, and the forwarded request does not ask the leader
	// for another.
	if n := expectContinue(t, r2.base+"/v1/blacklist/"+id, `{"reason":"again"}`); n != 1 {
		t.Errorf("POST with Expect: 100-continue via the standby got %d informational responses, want 1", n)
	}
	if fw := w.sim.Snapshot().Frameworks[0]; fw.Counters.Kills != 1 {
		t.Errorf("kills = %d, want exactly 1", fw.Counters.Kills)
	}
	// A forwarded request reaching a standby is refused, not bounced.
	code, hdr, body = call(t, "GET", r2.base+"/v1/tasks", "", api.HeaderForwardedBy, "r9")
	if code != 503 || hdr.Get("Retry-After") == "" || !strings.Contains(body, "leadership is moving") {
		t.Errorf("forwarded request to a standby = %d %s", code, body)
	}

	// Graceful hand-over: r1 stops, r2 leads at once with the same state.
	fwid := decode[api.Info](t, func() string { _, _, b := call(t, "GET", r1.base+"/v1/info", ""); return b }()).Framework.ID
	if err := r1.stop(t); err != nil {
		t.Fatalf("r1 stopped with %v", err)
	}
	eventually(t, 5*time.Second, "r2 ready", func() bool { return r2.Runner().Status().Ready })
	code, hdr, body = call(t, "GET", r2.base+"/v1/blacklist", "")
	if bl := decode[api.Agents](t, body); code != 200 || hdr.Get(api.HeaderServedBy) != "r2" || len(bl.Agents) != 1 || bl.Agents[0].ID != id {
		t.Errorf("blacklist after the hand-over = %d %s", code, body)
	}
	info := decode[api.Info](t, func() string { _, _, b := call(t, "GET", r2.base+"/v1/info", ""); return b }())
	if info.Framework.ID != fwid {
		t.Errorf("FrameworkID changed over the hand-over: %s -> %s", fwid, info.Framework.ID)
	}
}

// TestWritesWhileTheLeaderIsUnreachableOrLoading: a request that cannot
// reach a ready leader is refused with Retry-After; a write that reaches a
// leader still loading its state waits for the load and is applied once.
func TestWritesWhileTheLeaderIsUnreachableOrLoading(t *testing.T) {
	w := newWorld(t, 2)
	r1 := w.start(t, w.configFor(t, "r1"), Options{})
	eventually(t, 30*time.Second, "2 running tasks", allRunning(w.sim, 2))

	// A leader that holds the election but cannot be reached takes over
	// from r1.
	ghost, err := ha.NewEtcd(w.etcd.Client(t), ha.EtcdOptions{Framework: "regent-test", TTL: 2 * time.Second,
		Candidate: ha.Candidate{ID: "ghost", Address: "http://" + closedAddr(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer ghost.Close()
	won := make(chan *ha.Term, 1)
	go func() {
		term, err := ghost.Campaign(t.Context())
		if err != nil {
			t.Error(err)
		}
		won <- term
	}()
	eventually(t, 5*time.Second, "the ghost campaigning", func() bool {
		list, err := ghost.Candidates(t.Context())
		return err == nil && len(list) == 2
	})
	if err := r1.stop(t); err != nil {
		t.Fatal(err)
	}
	term := <-won
	if term == nil {
		t.FailNow()
	}

	release := make(chan struct{})
	r2 := w.start(t, w.configFor(t, "r2"), Options{WrapStore: func(s persistStore) persistStore {
		return &slowLoad{Store: s, release: release}
	}})
	eventually(t, 10*time.Second, "r2 sees the ghost lead", func() bool { return r2.Runner().Status().Leader.ID == "ghost" })
	code, hdr, body := call(t, "GET", r2.base+"/v1/info", "")
	if code != 502 || hdr.Get("Retry-After") == "" || !strings.Contains(body, "ghost") {
		t.Errorf("read with an unreachable leader = %d %s, want 502 naming it", code, body)
	}
	code, _, body = call(t, "POST", r2.base+"/v1/blacklist/"+w.sim.AgentIDs()[0], "")
	if code != 502 {
		t.Errorf("write with an unreachable leader = %d %s, want 502", code, body)
	}

	// The ghost resigns; r2 wins and blocks in Load until released.
	if err := term.Resign(t.Context()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "r2 leading (loading)", func() bool { return r2.Runner().Status().Leading })
	type result struct {
		code int
		body string
	}
	got := make(chan result, 1)
	agent := w.sim.AgentIDs()[0]
	go func() {
		code, _, body := call(t, "POST", r2.base+"/v1/blacklist/"+agent, "")
		got <- result{code, body}
	}()
	time.Sleep(300 * time.Millisecond)
	select {
	case res := <-got:
		t.Fatalf("write answered before the load finished: %d %s", res.code, res.body)
	default:
	}
	close(release)
	res := <-got
	if br := decode[fleet.BlacklistResult](t, res.body); res.code != 200 || !br.Changed || br.KilledTask == "" {
		t.Fatalf("write during the load = %d %s: want it applied after the load", res.code, res.body)
	}
	eventually(t, 20*time.Second, "1 task left", allRunning(w.sim, 1))
	// Applied once: the same write again changes nothing. (Mesos may see
	// the kill more than once: the framework repeats it while the task
	// still reports RUNNING, as KILL is not delivered reliably.)
	code, _, body = call(t, "POST", r2.base+"/v1/blacklist/"+agent, "")
	if br := decode[fleet.BlacklistResult](t, body); code != 200 || br.Changed {
		t.Errorf("the same write again = %d %s: want 200 and no change", code, body)
	}
	if fw := w.sim.Snapshot().Frameworks[0]; fw.Counters.DuplicateTaskIDs != 0 || fw.Counters.TasksLaunched != 2 {
		t.Errorf("counters %+v: want 2 launches and no duplicate", fw.Counters)
	}
}

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	l := freeListener(t)
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestNoStoreNoLeader: a replica that cannot reach its store is alive but
// not ready, knows no leader, and refuses reads and writes with 503 and
// Retry-After instead of answering from an empty state.
func TestNoStoreNoLeader(t *testing.T) {
	w := newWorld(t, 1)
	cfg := w.configFor(t, "r1")
	cfg.EtcdEndpoints = []string{"http://" + closedAddr(t)}
	cfg.EtcdDialTimeout = 200 * time.Millisecond
	r := w.start(t, cfg, Options{})
	if code, _, _ := call(t, "GET", r.base+"/healthz", ""); code != 200 {
		t.Errorf("/healthz = %d, want 200: liveness never depends on the store", code)
	}
	code, _, body := call(t, "GET", r.base+"/readyz", "")
	if code != 503 || !strings.Contains(body, "store") {
		t.Errorf("/readyz = %d %q", code, body)
	}
	for _, req := range [][2]string{{"GET", "/v1/info"}, {"GET", "/v1/tasks"}, {"POST", "/v1/blacklist/" + w.sim.AgentIDs()[0]}} {
		code, hdr, body := call(t, req[0], r.base+req[1], "")
		if code != 503 || hdr.Get("Retry-After") == "" || !strings.Contains(body, "no leader") {
			t.Errorf("%s %s = %d %s, want 503 with Retry-After", req[0], req[1], code, body)
		}
	}
	code, _, body = call(t, "GET", r.base+"/v1/replicas", "")
	if code != 503 {
		t.Errorf("/v1/replicas = %d %s, want 503", code, body)
	}
	if code, _, page := call(t, "GET", r.base+"/", ""); code != 200 || !strings.Contains(page, "no leader is elected") {
		t.Errorf("status page = %d, does not say that no leader is elected", code)
	}
	if len(w.sim.Snapshot().Frameworks) != 0 {
		t.Error("a replica without a store subscribed to Mesos")
	}
}

// TestStepDown: POST /v1/leader/step-down, sent to a standby, moves the
// leadership; the old leader stays up as a standby; it needs credentials
// when they are configured.
func TestStepDown(t *testing.T) {
	w := newWorld(t, 2)
	r1 := w.start(t, w.configFor(t, "r1"), Options{})
	eventually(t, 30*time.Second, "2 running tasks", allRunning(w.sim, 2))
	r2 := w.start(t, w.configFor(t, "r2"), Options{})
	eventually(t, 10*time.Second, "r2 sees r1 lead", func() bool { return r2.Runner().Status().Leader.ID == "r1" })
	if code, _, body := call(t, "GET", r2.base+"/v1/leader/step-down", ""); code != 405 {
		t.Errorf("GET step-down = %d %s", code, body)
	}
	code, hdr, body := call(t, "POST", r2.base+"/v1/leader/step-down", "")
	if code != 202 || hdr.Get(api.HeaderServedBy) != "r1" || !strings.Contains(body, `"stepping_down": "r1"`) {
		t.Fatalf("step-down through the standby = %d %s", code, body)
	}
	eventually(t, 10*time.Second, "r2 leads", func() bool { return r2.Runner().Status().Ready })
	eventually(t, 10*time.Second, "r1 a standby", func() bool {
		st := r1.Runner().Status()
		return !st.Leading && st.Leader.ID == "r2"
	})
	eventually(t, 10*time.Second, "tasks running", allRunning(w.sim, 2))
	if fw := w.sim.Snapshot().Frameworks[0]; fw.Counters.TasksLaunched != 2 {
		t.Errorf("launches after the step-down: %d", fw.Counters.TasksLaunched)
	}
}

// TestHostOf: the framework's hostname in Mesos comes from the advertised
// URL, with or without a port, IPv6 included.
func TestHostOf(t *testing.T) {
	for base, want := range map[string]string{
		"http://10.0.0.7:8080":    "10.0.0.7",
		"https://regent-0.regent": "regent-0.regent",
		"http://[fd00::7]:8080/x": "fd00::7",
		"ftp://host:21":           "",
		"regent-0:8080":           "",
		"http://:8080":            "",
		"http://%zz":              "",
	} {
		got := hostOf(base)
		if (want == "") != (got == nil) || (got != nil && *got != want) {
			t.Errorf("hostOf(%q) = %v, want %q", base, got, want)
		}
	}
}

// expectContinue POSTs body to url with Expect: 100-continue, requires a
// 200, and returns how many 1xx responses came before it.
func expectContinue(t *testing.T, url, body string) int {
	t.Helper()
	var n int
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(int, textproto.MIMEHeader) error { n++; return nil },
	})
	req, err := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Expect", "100-continue")
	tr := &http.Transport{ExpectContinueTimeout: 5 * time.Second}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s with Expect: 100-continue = %d %s", url, resp.StatusCode, b)
	}
	return n
}
