package drill

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-sched/regent/integration/mesossim"
	"github.com/regent-sched/regent/integration/simtest"
	"github.com/regent-sched/regent/persist"
)

// TestCheckerCatchesAReplicaOutsideTheElection plants a replica with
// another --store-prefix: it has its own election and an empty store, so
// it registers a second framework next to the group's. The checker must
// say so; before it started, the same topology passes.
func TestCheckerCatchesAReplicaOutsideTheElection(t *testing.T) {
	tp := Start(t, Options{Replicas: 2})
	firstLeader(t, tp)
	tp.MustPass(context.Background())

	rogue := tp.AddReplica("rogue", "--store-prefix", "/elsewhere")
	simtest.Eventually(t, 30*time.Second, "a second framework", func() bool {
		return len(tp.Sim.Snapshot().Frameworks) == 2
	})
	vs := tp.Check(context.Background())
	found := false
	for _, v := range vs {
		if v.Rule == "one-framework" && len(v.Around) > 0 {
			found = true
		}
	}
	if !found {
		t.Fatalf("the checker did not report the second framework; it reported %v", vs)
	}
	if s := vs[0].String(); !strings.Contains(s, "SUBSCRIBE") {
		t.Errorf("a violation does not show the calls around it: %s", s)
	}
	rogue.Kill()
}

// TestCheckerCatchesAnAckBeforeCommit plants a scheduler that
// acknowledges without committing: it takes the framework over (the
// group's replica is gone), kills a task and acknowledges TASK_KILLED
// while the store still holds the task RUNNING. Before it, the topology
// passes.
func TestCheckerCatchesAnAckBeforeCommit(t *testing.T) {
	tp := Start(t, Options{Replicas: 1})
	leader, fwid := firstLeader(t, tp)
	tp.MustPass(context.Background())
	leader.Kill()

	victim := tp.Sim.Snapshot().Frameworks[0].Tasks[0]
	rogue := subscribeRogue(t, tp.Sim.URL(), fwid)
	rogue.call(t, fmt.Sprintf(`{"type":"KILL","kill":{"task_id":{"value":%q},"agent_id":{"value":%q}}}`, victim.ID, victim.AgentID))
	st := rogue.update(t, victim.ID, "TASK_KILLED")
	rogue.call(t, fmt.Sprintf(`{"type":"ACKNOWLEDGE","acknowledge":{"task_id":{"value":%q},"agent_id":{"value":%q},"uuid":%q}}`,
		victim.ID, victim.AgentID, st.UUID))

	var found bool
	vs := tp.Check(context.Background())
	for _, v := range vs {
		if v.Rule == "acked-before-commit" && strings.Contains(v.Detail, victim.ID) && strings.Contains(v.Detail, "TASK_RUNNING") {
			found = true
		}
	}
	if !found {
		t.Fatalf("the checker did not report the ack before the commit; it reported %v", vs)
	}
}

// rogue is a bare scheduler speaking the v1 JSON API by hand.
type rogue struct {
	url, fwid, stream string
	events            chan rogueEvent
}

type rogueEvent struct {
	Type   string `json:"type"`
	Update *struct {
		Status struct {
			TaskID struct {
				Value string `json:"value"`
			} `json:"task_id"`
			State string `json:"state"`
			UUID  string `json:"uuid"`
		} `json:"status"`
	} `json:"update"`
}

func subscribeRogue(t *testing.T, url, fwid string) *rogue {
	t.Helper()
	body := fmt.Sprintf(`{"type":"SUBSCRIBE","framework_id":{"value":%q},"subscribe":{"framework_info":{"user":"root","name":"drill","id":{"value":%q},"failover_timeout":3600}}}`, fwid, fwid)
	req, err := http.NewRequest("POST", url+"/api/v1/scheduler", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("rogue SUBSCRIBE: %v %v", resp, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	r := &rogue{url: url, fwid: fwid, stream: resp.Header.Get("Mesos-Stream-Id"), events: make(chan rogueEvent, 1024)}
	go func() { // RecordIO: "<length>\n<record>"
		defer close(r.events)
		br := bufio.NewReader(resp.Body)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			n, err := strconv.Atoi(strings.TrimSpace(line))
			if err != nil || n > 1<<20 {
				return
			}
			rec := make([]byte, n)
			if _, err := io.ReadFull(br, rec); err != nil {
				return
			}
			var ev rogueEvent
			if json.Unmarshal(rec, &ev) == nil {
				select {
				case r.events <- ev:
				default: // nobody reads heartbeats and offers; drop
				}
			}
		}
	}()
	return r
}

func (r *rogue) call(t *testing.T, body string) {
	t.Helper()
	body = strings.Replace(body, "{", fmt.Sprintf(`{"framework_id":{"value":%q},`, r.fwid), 1)
	req, err := http.NewRequest("POST", r.url+"/api/v1/scheduler", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Mesos-Stream-Id", r.stream)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("rogue call %s: %d %s", body, resp.StatusCode, msg)
	}
}

// update waits for the task's update with the given state.
func (r *rogue) update(t *testing.T, task, state string) (st struct{ UUID string }) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-r.events:
			if !ok {
				t.Fatal("rogue: the stream ended")
			}
			if ev.Type == "UPDATE" && ev.Update.Status.TaskID.Value == task && ev.Update.Status.State == state {
				st.UUID = ev.Update.Status.UUID
				return st
			}
		case <-timeout:
			t.Fatalf("rogue: no %s update for %s", state, task)
		}
	}
}

// TestCheckerCatchesACommitOutsideTheTerm plants a writer whose fence is
// not the leadership: a candidate key of its own in the election, newer
// than the leader's, with which the store lets it commit (the fence only
// says the key exists). The checker must name it; before it, the topology
// passes. On both stores.
func TestCheckerCatchesACommitOutsideTheTerm(t *testing.T) {
	stores(t, func(t *testing.T, store string) {
		tp := Start(t, Options{Store: store, Replicas: 1})
		firstLeader(t, tp)
		ctx := context.Background()
		tp.MustPass(ctx)

		s, fence := plantCandidate(t, tp)
		if _, err := s.Load(ctx); err != nil {
			t.Fatalf("planted writer: load: %v", err)
		}
		gen, err := s.Commit(ctx, fence, persist.Batch{})
		if err != nil {
			t.Fatalf("planted writer: commit: %v", err)
		}
		t.Logf("planted commit of generation %d by %s", gen, fence.Key)
		var vs []Violation
		simtest.Eventually(t, 10*time.Second, "the planted commit reported", func() bool {
			vs = tp.Check(ctx)
			for _, v := range vs {
				if v.Rule == "deposed-commit" && strings.Contains(v.Detail, fence.Key) && strings.Contains(v.Detail, "older candidate") {
					return true
				}
			}
			return false
		})
		t.Logf("the checker said: %v", vs)
	})
}

// plantCandidate joins the election with a key (etcd, on a lease) or an
// ephemeral sequential znode (ZooKeeper) of its own, and returns a store
// writer with that fence. The candidacy ends with the test.
func plantCandidate(t *testing.T, tp *Topology) (persist.Store, persist.Fence) {
	t.Helper()
	ctx := context.Background()
	dir := persist.LeaderDir("", storeFramework)
	if tp.etcdCli != nil {
		lease, err := tp.etcdCli.Grant(ctx, 60)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = tp.etcdCli.Revoke(context.Background(), lease.ID) })
		key := dir + "/planted"
		resp, err := tp.etcdCli.Put(ctx, key, "planted", clientv3.WithLease(lease.ID))
		if err != nil {
			t.Fatal(err)
		}
		s, err := persist.NewEtcd(tp.etcdCli, persist.EtcdOptions{Framework: storeFramework})
		if err != nil {
			t.Fatal(err)
		}
		return s, persist.Fence{Key: key, Revision: resp.Header.Revision}
	}
	conn := tp.ZooKeeper.Conn(t)
	node, err := conn.Create(dir+"/candidate-planted-", []byte("planted"), zk.FlagEphemeral|zk.FlagSequence, zk.WorldACL(zk.PermAll))
	if err != nil {
		t.Fatal(err)
	}
	_, st, err := conn.Exists(node)
	if err != nil {
		t.Fatal(err)
	}
	s, err := persist.NewZooKeeper(conn, persist.ZKOptions{Framework: storeFramework})
	if err != nil {
		t.Fatal(err)
	}
	return s, persist.Fence{Key: node, Revision: st.Czxid}
}

// TestCheckCommits judges commit histories by hand: terms that go
// backwards, a writer that was not the leader, and stores written before
// format 3 (no writer: no judgement).
func TestCheckCommits(t *testing.T) {
	a := persist.Fence{Key: "/regent/drill/leader/a", Revision: 10}
	b := persist.Fence{Key: "/regent/drill/leader/b", Revision: 20}
	good := []commitSeen{{gen: 1, writer: a}, {gen: 2, writer: a}, {gen: 3, writer: b}, {gen: 4}}
	if vs := checkCommits(good); len(vs) != 0 {
		t.Errorf("a clean history: %v", vs)
	}
	back := []commitSeen{{gen: 3, writer: b, at: "revision 30"}, {gen: 2, writer: a}, {gen: 4, writer: a, at: "revision 40"}}
	if vs := checkCommits(back); len(vs) != 1 || !strings.Contains(vs[0].Detail, "generation 4 (revision 40) written by term 10") {
		t.Errorf("term going backwards: %v", vs)
	}
	wrong := []commitSeen{{gen: 1, writer: b, wrong: "while the older candidate x led"}}
	if vs := checkCommits(wrong); len(vs) != 1 || !strings.Contains(vs[0].Detail, "older candidate x") {
		t.Errorf("a writer that did not lead: %v", vs)
	}

	dir := persist.LeaderDir("", storeFramework) + "/"
	for _, tc := range []struct {
		live   map[string]int64
		writer persist.Fence
		want   string
	}{
		{map[string]int64{a.Key: 10, b.Key: 20}, a, ""},
		{map[string]int64{a.Key: 10, b.Key: 20}, b, "older candidate " + a.Key},
		{map[string]int64{b.Key: 20}, a, "election key was gone"},
		{map[string]int64{a.Key: 11}, a, "election key was gone"},
		{map[string]int64{}, persist.Fence{Key: "/elsewhere/x", Revision: 3}, "outside the election"},
		{map[string]int64{}, persist.Fence{}, ""},
	} {
		if got := etcdJudge(tc.writer, dir, tc.live); (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("etcdJudge(%+v, %v) = %q, want %q", tc.writer, tc.live, got, tc.want)
		}
	}
}

// TestJudgeAck: each ack is judged with the store's view taken for that
// very call; no view (the rule off, a store outage) is no judgement.
func TestJudgeAck(t *testing.T) {
	for _, tc := range []struct {
		seen  any
		acked string
		bad   bool
	}{
		{nil, "TASK_RUNNING", false},
		{ackSeen{err: io.EOF}, "TASK_RUNNING", false},
		{ackSeen{present: true, state: "TASK_RUNNING"}, "TASK_RUNNING", false},
		{ackSeen{present: true, state: "TASK_RUNNING"}, "TASK_STARTING", false}, // the store is ahead
		{ackSeen{present: true, state: "TASK_STARTING"}, "TASK_RUNNING", true},
		{ackSeen{}, "TASK_RUNNING", true},
		{ackSeen{}, "TASK_FINISHED", false}, // terminal, forgotten
		{ackSeen{present: true, state: "TASK_KILLED"}, "TASK_KILLED", false},
		{ackSeen{present: true, state: "TASK_RUNNING"}, "TASK_KILLED", true},
	} {
		if got := judgeAck(tc.seen, tc.acked); (got != "") != tc.bad {
			t.Errorf("judgeAck(%+v, %s) = %q, want a violation: %v", tc.seen, tc.acked, got, tc.bad)
		}
	}
}

// TestCheckerCatchesACallAfterTheTerm plants a scheduler that keeps acting
// after its term's election key is gone: it subscribes while the killed
// leader's key still stands (so the stream is that term's), and calls
// again once the key has expired. The checker must name the call; before
// it, the topology passes. On both stores.
func TestCheckerCatchesACallAfterTheTerm(t *testing.T) {
	for _, store := range []string{"etcd", "zk"} {
		t.Run(store, func(t *testing.T) {
			tp := Start(t, Options{Store: store, Replicas: 1})
			leader, fwid := firstLeader(t, tp)
			tp.MustPass(context.Background())
			key := tp.election.read().key
			leader.Kill()
			rogue := subscribeRogue(t, tp.Sim.URL(), fwid)
			simtest.Eventually(t, 30*time.Second, "the killed leader's key expired", func() bool {
				_, gone := tp.election.goneAt(key)
				return gone
			})
			time.Sleep(2 * deposedCallSlack)
			rogue.call(t, `{"type":"RECONCILE","reconcile":{"tasks":[]}}`)
			var found bool
			vs := tp.Check(context.Background())
			for _, v := range vs {
				if v.Rule == "deposed-call" && strings.Contains(v.Detail, "RECONCILE") && strings.Contains(v.Detail, leader.ID) {
					found = true
				}
			}
			if !found {
				t.Fatalf("the checker did not report the call after the term; it reported %v", vs)
			}
		})
	}
}

func TestDeposedCalls(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	rec := func(ms int, typ, stream string, status int, leader leaderSeen) mesossim.CallRecord {
		return mesossim.CallRecord{At: at(ms + 5), Type: typ, StreamID: stream, Status: status,
			Before: callSeen{arrived: at(ms), leader: leader}}
	}
	led := func(key, id string) leaderSeen { return leaderSeen{key: key, id: id} }
	none := leaderSeen{}
	gone := map[string]time.Time{"k1": at(25 - int(deposedCallSlack/time.Millisecond)), "k3": at(1500)}
	calls := []mesossim.CallRecord{
		rec(0, "SUBSCRIBE", "s1", 200, led("k1", "r1")),
		rec(10, "RECONCILE", "s1", 202, none), // its term: fine
		rec(25, "ACCEPT", "s1", 202, none),    // the slack after the key was seen gone: not after it
		rec(30, "DECLINE", "s1", 202, none),   // after: violation
		rec(40, "SUBSCRIBE", "s2", 200, led("k2", "r2")),
		rec(50, "ACKNOWLEDGE", "s1", 403, none), // refused, but still a call: violation
		rec(60, "ACKNOWLEDGE", "s2", 202, none), // k2 never vanished
		rec(1000, "SUBSCRIBE", "s3", 200, led("k3", "r3")),
		rec(3000, "ACCEPT", "s3", 202, none), // r3 was frozen meanwhile: exempt
		rec(3010, "ACCEPT", "s9", 202, none), // a stream never seen subscribing
		rec(3020, "SUBSCRIBE", "s4", 200, leaderSeen{err: io.EOF}),
		rec(3030, "ACCEPT", "s4", 202, none), // its owner could not be read: no judgement
	}
	tp := &Topology{}
	tp.paused.at = map[string][]time.Time{"r3": {at(2000)}, "r2": {at(-5000)}}
	var got []string
	goneAt := func(k string) (time.Time, bool) { g, ok := gone[k]; return g, ok }
	tp.deposedCalls(calls, goneAt, func(rule string, when time.Time, format string, args ...any) {
		got = append(got, fmt.Sprintf("%s@%d: %s", rule, when.Sub(t0).Milliseconds(), fmt.Sprintf(format, args...)))
	})
	if len(got) != 2 || !strings.HasPrefix(got[0], "deposed-call@30: DECLINE") || !strings.Contains(got[0], "105ms after its election key k1 vanished") ||
		!strings.HasPrefix(got[1], "deposed-call@50: ACKNOWLEDGE (HTTP 403)") {
		t.Errorf("violations:\n%s", strings.Join(got, "\n"))
	}
}
