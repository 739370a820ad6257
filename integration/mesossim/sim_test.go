package mesossim

import (
	"bytes"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

func newSim(t testing.TB, agents int, mod func(*Config)) *Cluster {
	t.Helper()
	cfg := FastConfig()
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	for i := 0; i < agents; i++ {
		if _, err := c.AddAgent(AgentSpec{}); err != nil {
			t.Fatalf("AddAgent: %v", err)
		}
	}
	return c
}

const wait = 5 * time.Second

func TestSubscribeBothCodecs(t *testing.T) {
	for _, json := range []bool{false, true} {
		name := map[bool]string{false: "protobuf", true: "json"}[json]
		t.Run(name, func(t *testing.T) {
			c := newSim(t, 1, nil)
			m := newMGO(t, c.URL(), json)
			sub := m.subscribe(frameworkInfo("codec-" + name))
			if !strings.HasPrefix(sub.FrameworkID.Value, c.MasterID()+"-") {
				t.Errorf("framework id %q does not start with the master id %q", sub.FrameworkID.Value, c.MasterID())
			}
			if got := sub.GetHeartbeatIntervalSeconds(); got != 0.2 {
				t.Errorf("heartbeat_interval_seconds = %v, want 0.2", got)
			}
			if sub.MasterInfo == nil || sub.MasterInfo.ID != c.MasterID() || sub.MasterInfo.GetAddress().GetPort() == 0 {
				t.Errorf("master_info = %v", sub.MasterInfo)
			}
			// HEARTBEAT at once, then at the interval; offers in between.
			first := m.next(wait, func(*scheduler.Event) bool { return true })
			if first.Type != scheduler.Event_HEARTBEAT {
				t.Fatalf("event after SUBSCRIBED: %v, want HEARTBEAT", first.Type)
			}
			var o mesos.Offer
			for beats := 1; beats < 3 || o.ID.Value == ""; {
				ev := m.next(wait, func(*scheduler.Event) bool { return true })
				switch ev.Type {
				case scheduler.Event_HEARTBEAT:
					beats++
				case scheduler.Event_OFFERS:
					o = ev.Offers.Offers[0]
				}
			}
			if o.FrameworkID.Value != sub.FrameworkID.Value || o.Hostname == "" || len(o.Resources) != 4 {
				t.Errorf("offer = %v", o)
			}
			if o.GetAllocationInfo().GetRole() != "*" {
				t.Errorf("offer role = %q, want *", o.GetAllocationInfo().GetRole())
			}
		})
	}
}

func TestTwoNewFrameworksGetDistinctIDs(t *testing.T) {
	c := newSim(t, 1, nil)
	a := newMGO(t, c.URL(), false).subscribe(frameworkInfo("a"))
	b := newMGO(t, c.URL(), true).subscribe(frameworkInfo("b"))
	if a.FrameworkID.Value == b.FrameworkID.Value {
		t.Fatalf("both frameworks got id %q", a.FrameworkID.Value)
	}
}

func TestTaskLifecycleAcknowledged(t *testing.T) {
	c := newSim(t, 1, nil)
	m := newMGO(t, c.URL(), false)
	m.subscribe(frameworkInfo("life"))
	o := m.offer(wait)
	m.launch(o, commandTask("t1", o.AgentID, "sleep 0.2"))
	for _, want := range []mesos.TaskState{mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED} {
		ev := m.next(wait, updateFor("t1"))
		st := ev.Update.Status
		if st.GetState() != want {
			t.Fatalf("update %v, want %v", st.GetState(), want)
		}
		if len(st.UUID) != 16 || st.GetSource() != mesos.SOURCE_EXECUTOR || st.AgentID.Value != o.AgentID.Value ||
			st.ExecutorID.GetValue() != "t1" || st.GetTimestamp() == 0 {
			t.Fatalf("update fields: %v", st)
		}
		m.ack(st)
	}
	// The task leaves the master once its terminal update is acknowledged.
	eventually(t, func() bool {
		fw, _ := c.Snapshot().Framework(m.frameworkID())
		return len(fw.Tasks) == 0
	}, "task removed after terminal ack")
	fw, _ := c.Snapshot().Framework(m.frameworkID())
	if fw.Counters.Acks != 3 || fw.Counters.TasksLaunched != 1 {
		t.Fatalf("counters = %+v", fw.Counters)
	}
}

func TestUnacknowledgedUpdateIsResentAndBlocksTheNext(t *testing.T) {
	var mu sync.Mutex
	var acks, subscribes []CallRecord
	before := 0
	c := newSim(t, 1, func(cfg *Config) {
		cfg.OnCall = func(r CallRecord) {
			mu.Lock()
			defer mu.Unlock()
			switch r.Type {
			case "ACKNOWLEDGE":
				acks = append(acks, r)
			case "SUBSCRIBE":
				subscribes = append(subscribes, r)
			}
		}
		cfg.BeforeCall = func(call *scheduler.Call) any {
			if call.Type == scheduler.Call_SUBSCRIBE {
				return "subscribe"
			}
			if call.Type != scheduler.Call_ACKNOWLEDGE {
				return nil
			}
			mu.Lock()
			defer mu.Unlock()
			before++
			return before
		}
	})
	m := newMGO(t, c.URL(), true)
	m.subscribe(frameworkInfo("resend"))
	o := m.offer(wait)
	m.launch(o, commandTask("t1", o.AgentID, "sleep 60"))
	first := m.next(wait, updateFor("t1")).Update.Status
	if first.GetState() != mesos.TASK_STARTING {
		t.Fatalf("first update %v", first.GetState())
	}

	// Without an ack the same update comes again, and RUNNING waits behind it.
	for i := 0; i < 2; i++ {
		again := m.next(wait, updateFor("t1")).Update.Status
		if again.GetState() != mesos.TASK_STARTING || !bytes.Equal(again.UUID, first.UUID) {
			t.Fatalf("resend %d: %v uuid %x, want STARTING uuid %x", i, again.GetState(), again.UUID, first.UUID)
		}
	}
	if fw, _ := c.Snapshot().Framework(m.frameworkID()); fw.UnackedUpdates != 2 {
		t.Fatalf("unacknowledged updates = %d, want 2 (RUNNING waits behind STARTING)", fw.UnackedUpdates)
	}
	// A duplicate's ack is as good as the first's; an ack with another uuid is ignored.
	m.mustCall(calls.Acknowledge(o.AgentID.Value, "t1", bytes.Repeat([]byte{7}, 16)))
	m.ack(first)
	running := m.next(wait, updateFor("t1", mesos.TASK_RUNNING)).Update.Status
	m.ack(running)
	fw, _ := c.Snapshot().Framework(m.frameworkID())
	if fw.Counters.UpdatesResent < 2 || fw.Counters.AcksIgnored != 1 {
		t.Fatalf("counters = %+v", fw.Counters)
	}
	if fw.Tasks[0].State != "TASK_RUNNING" || fw.Tasks[0].Unacked != 0 {
		t.Fatalf("task = %+v", fw.Tasks[0])
	}
	// The call journal tells which update each ack released.
	mu.Lock()
	defer mu.Unlock()
	want := []struct{ uuid, state string }{
		{hex.EncodeToString(bytes.Repeat([]byte{7}, 16)), ""},
		{hex.EncodeToString(first.UUID), "TASK_STARTING"},
		{hex.EncodeToString(running.UUID), "TASK_RUNNING"},
	}
	if len(acks) != len(want) || before != len(want) {
		t.Fatalf("acks recorded %+v (%d seen before), want %d", acks, before, len(want))
	}
	if len(subscribes) != 1 || subscribes[0].Before != "subscribe" {
		t.Errorf("SUBSCRIBE records %+v: want one, with BeforeCall's answer", subscribes)
	}
	for i, w := range want {
		if a := acks[i]; a.TaskID != "t1" || a.AckUUID != w.uuid || a.AckedState != w.state || a.Status != 202 || a.Before != i+1 {
			t.Errorf("ack %d: %+v, want uuid %s state %q, BeforeCall's answer %d", i, a, w.uuid, w.state, i+1)
		}
	}
}

// runTask launches a long task and acknowledges it up to RUNNING.
func runTask(t *testing.T, m *mgo, o mesos.Offer, id string) {
	t.Helper()
	m.launch(o, commandTask(id, o.AgentID, "sleep 600"))
	for _, want := range []mesos.TaskState{mesos.TASK_STARTING, mesos.TASK_RUNNING} {
		st := m.next(wait, updateFor(id)).Update.Status
		if st.GetState() != want {
			t.Fatalf("%s: update %v, want %v", id, st.GetState(), want)
		}
		m.ack(st)
	}
}

func TestReconciliation(t *testing.T) {
	c := newSim(t, 1, nil)
	m := newMGO(t, c.URL(), false)
	m.subscribe(frameworkInfo("rec", mesos.FrameworkInfo_Capability_PARTITION_AWARE))
	o := m.offer(wait)
	runTask(t, m, o, "t1")
	check := func(ev *scheduler.Event, want mesos.TaskState) {
		t.Helper()
		st := ev.Update.Status
		if st.TaskID.Value == "" {
			t.Fatalf("no answer")
		}
		if st.GetState() != want || st.GetReason() != mesos.REASON_RECONCILIATION ||
			st.GetSource() != mesos.SOURCE_MASTER || len(st.UUID) != 0 {
			t.Fatalf("reconciliation answer %v, want %v with REASON_RECONCILIATION, SOURCE_MASTER, no uuid", st, want)
		}
	}
	// Explicit: known, unknown on a registered agent, unknown agent, no agent.
	m.mustCall(calls.Reconcile(calls.ReconcileTasks(map[string]string{
		"t1": o.AgentID.Value, "ghost": o.AgentID.Value, "nowhere": "no-such-agent", "lost": "",
	})))
	got := m.updates("t1", "ghost", "nowhere", "lost")
	for id, want := range map[string]mesos.TaskState{
		"t1": mesos.TASK_RUNNING, "ghost": mesos.TASK_GONE, "nowhere": mesos.TASK_UNKNOWN, "lost": mesos.TASK_UNKNOWN,
	} {
		check(&scheduler.Event{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{Status: *got[id]}}, want)
	}
	// Implicit: every task the master knows.
	m.mustCall(calls.Reconcile())
	check(m.next(wait, updateFor("t1")), mesos.TASK_RUNNING)
}

func TestReconciliationNotPartitionAware(t *testing.T) {
	c := newSim(t, 1, nil)
	m := newMGO(t, c.URL(), true)
	m.subscribe(frameworkInfo("rec-old"))
	o := m.offer(wait)
	m.mustCall(calls.Reconcile(calls.ReconcileTasks(map[string]string{"ghost": o.AgentID.Value})))
	if st := m.next(wait, updateFor("ghost")).Update.Status; st.GetState() != mesos.TASK_LOST {
		t.Fatalf("unknown task answered %v, want TASK_LOST", st.GetState())
	}
}

func TestDeclineFiltersSuppressRevive(t *testing.T) {
	c := newSim(t, 1, nil)
	m := newMGO(t, c.URL(), false)
	m.subscribe(frameworkInfo("filters"))
	o := m.offer(wait)
	// A long refusal holds the agent back for many allocation cycles...
	m.mustCall(calls.Decline(o.ID).With(calls.RefuseSeconds(time.Hour)))
	m.none(600*time.Millisecond, isType(scheduler.Event_OFFERS), "offer inside a decline filter")
	// ...until REVIVE clears it.
	m.mustCall(calls.Revive())
	o = m.offer(wait)
	// A short refusal expires by itself.
	m.mustCall(calls.Decline(o.ID).With(calls.RefuseSeconds(300 * time.Millisecond)))
	o = m.offer(wait)
	// SUPPRESS stops offers; outstanding ones stay valid.
	m.mustCall(calls.Suppress())
	m.mustCall(calls.Decline(o.ID).With(calls.RefuseSeconds(0)))
	m.none(600*time.Millisecond, isType(scheduler.Event_OFFERS), "offer while suppressed")
	m.mustCall(calls.Revive())
	m.offer(wait)
	fw, _ := c.Snapshot().Framework(m.frameworkID())
	if fw.Counters.OffersDeclined != 3 {
		t.Fatalf("declined = %d, want 3", fw.Counters.OffersDeclined)
	}
}

func TestFilterLetsLargerOfferThrough(t *testing.T) {
	c := newSim(t, 1, nil)
	m := newMGO(t, c.URL(), false)
	m.subscribe(frameworkInfo("filter-subset"))
	o := m.offer(wait)
	runTask(t, m, o, "t1") // the rest of the offer returns under the default 5 s filter
	m.none(300*time.Millisecond, isType(scheduler.Event_OFFERS), "offer of filtered resources")
	// Killing the task frees more than the filter holds: offered at once.
	m.mustCall(calls.Kill("t1", o.AgentID.Value))
	m.ack(m.next(wait, updateFor("t1", mesos.TASK_KILLED)).Update.Status)
	o2 := m.offer(wait)
	if p, _ := poolOf(o2.Resources); p.scalars["cpus"] != 4000 {
		t.Fatalf("offer after kill has %v, want all 4 cpus", p)
	}
}

func TestKill(t *testing.T) {
	for _, killing := range []bool{true, false} {
		t.Run(map[bool]string{true: "killing-capable", false: "plain"}[killing], func(t *testing.T) {
			c := newSim(t, 1, nil)
			m := newMGO(t, c.URL(), false)
			var caps []mesos.FrameworkInfo_Capability_Type
			if killing {
				caps = append(caps, mesos.FrameworkInfo_Capability_TASK_KILLING_STATE)
			}
			m.subscribe(frameworkInfo("kill", caps...))
			o := m.offer(wait)
			runTask(t, m, o, "t1")
			m.mustCall(calls.Kill("t1", o.AgentID.Value))
			st := m.next(wait, updateFor("t1")).Update.Status
			if killing {
				if st.GetState() != mesos.TASK_KILLING {
					t.Fatalf("first update after kill %v, want TASK_KILLING", st.GetState())
				}
				m.ack(st)
				st = m.next(wait, updateFor("t1")).Update.Status
			}
			if st.GetState() != mesos.TASK_KILLED || len(st.UUID) != 16 {
				t.Fatalf("update %v, want TASK_KILLED with uuid", st)
			}
			m.ack(st)
			// Killing what the master no longer knows is answered like reconciliation.
			m.mustCall(calls.Kill("t1", o.AgentID.Value))
			st = m.next(wait, updateFor("t1")).Update.Status
			if st.GetState() != mesos.TASK_LOST || len(st.UUID) != 0 || st.GetReason() != mesos.REASON_RECONCILIATION {
				t.Fatalf("kill of unknown task answered %v", st)
			}
		})
	}
}

func TestInvalidLaunches(t *testing.T) {
	c := newSim(t, 2, nil)
	m := newMGO(t, c.URL(), true)
	m.subscribe(frameworkInfo("invalid", mesos.FrameworkInfo_Capability_PARTITION_AWARE))
	ev := m.next(wait, func(ev *scheduler.Event) bool {
		return ev.Type == scheduler.Event_OFFERS && len(ev.Offers.Offers) == 2
	})
	o1, o2 := ev.Offers.Offers[0], ev.Offers.Offers[1]
	tooBig := commandTask("big", o1.AgentID, "sleep 1", scalar("cpus", 5))
	noRes := mesos.TaskInfo{Name: "nores", TaskID: mesos.TaskID{Value: "nores"}, AgentID: o1.AgentID,
		Command: &mesos.CommandInfo{Value: strPtr("true")}}
	both := commandTask("both", o1.AgentID, "true")
	both.Executor = &mesos.ExecutorInfo{ExecutorID: mesos.ExecutorID{Value: "e"}}
	wrongAgent := commandTask("wrong-agent", o2.AgentID, "true")
	badID := commandTask("bad/id", o1.AgentID, "true")
	ok := commandTask("ok", o1.AgentID, "sleep 60")
	dup := commandTask("ok", o1.AgentID, "sleep 60")
	m.launch(o1, tooBig, noRes, both, wrongAgent, badID, ok, dup)
	for _, id := range []string{"big", "nores", "both", "wrong-agent", "bad/id"} {
		st := m.next(wait, updateFor(id)).Update.Status
		if st.GetState() != mesos.TASK_ERROR || st.GetReason() != mesos.REASON_TASK_INVALID || len(st.UUID) != 0 {
			t.Fatalf("%s: %v, want TASK_ERROR REASON_TASK_INVALID without uuid", id, st)
		}
	}
	// The valid "ok" starts; its duplicate in the same call is refused.
	var sawDup, sawStart bool
	for !sawDup || !sawStart {
		st := m.next(wait, updateFor("ok")).Update.Status
		switch st.GetState() {
		case mesos.TASK_ERROR:
			if !strings.Contains(st.GetMessage(), "duplicate") {
				t.Fatalf("duplicate refused with %q", st.GetMessage())
			}
			sawDup = true
		case mesos.TASK_STARTING:
			m.ack(st)
			sawStart = true
		}
	}
	// The consumed offer cannot be used again; with both offers of different
	// agents, the whole call is refused.
	m.launch(o1, commandTask("again", o1.AgentID, "true"))
	st := m.next(wait, updateFor("again")).Update.Status
	if st.GetState() != mesos.TASK_DROPPED || st.GetReason() != mesos.REASON_INVALID_OFFERS || len(st.UUID) != 0 {
		t.Fatalf("reused offer: %v, want TASK_DROPPED REASON_INVALID_OFFERS", st)
	}
	m.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunch(commandTask("mixed", o2.AgentID, "true"))}.WithOffers(o2.ID, o1.ID)))
	if st := m.next(wait, updateFor("mixed")).Update.Status; st.GetState() != mesos.TASK_DROPPED {
		t.Fatalf("mixed offers: %v", st)
	}
	fw, _ := c.Snapshot().Framework(m.frameworkID())
	if fw.Counters.DuplicateTaskIDs != 1 || fw.Counters.TasksLaunched != 1 {
		t.Fatalf("counters = %+v", fw.Counters)
	}
}

func strPtr(s string) *string { return &s }

func TestLaunchGroup(t *testing.T) {
	c := newSim(t, 1, nil)
	m := newMGO(t, c.URL(), false)
	m.subscribe(frameworkInfo("group"))
	o := m.offer(wait)
	exec := mesos.ExecutorInfo{Type: mesos.ExecutorInfo_DEFAULT, ExecutorID: mesos.ExecutorID{Value: "pod"},
		Resources: []mesos.Resource{scalar("cpus", 0.1), scalar("mem", 32)}}
	a := commandTask("a", o.AgentID, "sleep 600")
	b := commandTask("b", o.AgentID, "sleep 600")
	m.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunchGroup(exec, a, b)}.WithOffers(o.ID)))
	running := map[string]bool{}
	for len(running) < 2 {
		ev := m.next(wait, isType(scheduler.Event_UPDATE))
		st := ev.Update.Status
		m.ack(st)
		if st.GetState() == mesos.TASK_RUNNING {
			running[st.TaskID.Value] = true
		}
		if st.ExecutorID.GetValue() != "pod" {
			t.Fatalf("executor %q, want pod", st.ExecutorID.GetValue())
		}
	}
	// Killing one task of a group kills the group.
	m.mustCall(calls.Kill("a", o.AgentID.Value))
	killed := map[string]bool{}
	for len(killed) < 2 {
		st := m.next(wait, isType(scheduler.Event_UPDATE)).Update.Status
		m.ack(st)
		if st.GetState() == mesos.TASK_KILLED {
			killed[st.TaskID.Value] = true
		}
	}
}

func TestLaunchGroupInvalidFailsWhole(t *testing.T) {
	c := newSim(t, 1, nil)
	m := newMGO(t, c.URL(), false)
	m.subscribe(frameworkInfo("group-bad"))
	o := m.offer(wait)
	exec := mesos.ExecutorInfo{Type: mesos.ExecutorInfo_DEFAULT, ExecutorID: mesos.ExecutorID{Value: "pod"}}
	a := commandTask("a", o.AgentID, "sleep 600")
	b := commandTask("b", o.AgentID, "sleep 600", scalar("cpus", 100))
	m.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunchGroup(exec, a, b)}.WithOffers(o.ID)))
	for i := 0; i < 2; i++ {
		st := m.next(wait, isType(scheduler.Event_UPDATE)).Update.Status
		if st.GetState() != mesos.TASK_ERROR || st.GetReason() != mesos.REASON_TASK_GROUP_INVALID {
			t.Fatalf("group task %s: %v", st.TaskID.Value, st)
		}
	}
}

func TestFrameworkFailoverNewestSubscriberWins(t *testing.T) {
	c := newSim(t, 1, nil)
	a := newMGO(t, c.URL(), false)
	info := frameworkInfo("failover")
	id := a.subscribe(info).FrameworkID
	o := a.offer(wait)
	runTask(t, a, o, "t1")

	b := newMGO(t, c.URL(), true)
	info.ID = id
	if got := b.subscribe(info).FrameworkID.Value; got != id.Value {
		t.Fatalf("re-subscribe got id %q, want %q", got, id.Value)
	}
	ev := a.next(wait, isType(scheduler.Event_ERROR))
	if ev.Error.Message != "Framework failed over" {
		t.Fatalf("old stream error %q", ev.Error.Message)
	}
	a.streamEnd(wait)
	// The new scheduler sees the same task.
	b.mustCall(calls.Reconcile())
	if st := b.next(wait, updateFor("t1")).Update.Status; st.GetState() != mesos.TASK_RUNNING {
		t.Fatalf("task after failover %v", st.GetState())
	}
	fw, _ := c.Snapshot().Framework(id.Value)
	if fw.Counters.FailedOver != 1 || fw.Counters.Subscriptions != 2 {
		t.Fatalf("counters = %+v", fw.Counters)
	}
}

func TestReSubscribeRedeliversPendingUpdate(t *testing.T) {
	c := newSim(t, 1, nil)
	a := newMGO(t, c.URL(), false)
	info := frameworkInfo("redeliver")
	info.ID = a.subscribe(info).FrameworkID
	o := a.offer(wait)
	a.launch(o, commandTask("t1", o.AgentID, "sleep 600"))
	st := a.next(wait, updateFor("t1")).Update.Status // STARTING, left unacknowledged
	if err := c.DisconnectFramework(info.ID.Value); err != nil {
		t.Fatal(err)
	}
	a.streamEnd(wait)
	b := newMGO(t, c.URL(), false)
	b.subscribe(info)
	again := b.next(wait, updateFor("t1")).Update.Status
	if !bytes.Equal(again.UUID, st.UUID) {
		t.Fatalf("after re-subscribe got %v, want the unacknowledged STARTING again", again)
	}
}

func TestFailoverTimeoutRemovesFramework(t *testing.T) {
	c := newSim(t, 1, nil)
	m := newMGO(t, c.URL(), false)
	info := frameworkInfo("short-lived")
	ft := 0.3
	info.FailoverTimeout = &ft
	info.ID = m.subscribe(info).FrameworkID
	o := m.offer(wait)
	runTask(t, m, o, "t1")
	m.close() // the scheduler goes away
	eventually(t, func() bool {
		st := c.Snapshot()
		_, present := st.Framework(info.ID.Value)
		return !present && len(st.CompletedFrameworks) == 1
	}, "framework removed after failover_timeout")
	if st := c.Snapshot(); st.Agents[0].Tasks != 0 {
		t.Fatalf("tasks left on agent: %+v", st.Agents[0])
	}
	again := newMGO(t, c.URL(), false)
	ev, err := again.trySubscribe(info)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != scheduler.Event_ERROR || ev.Error.Message != "Framework has been removed" {
		t.Fatalf("subscribe of a removed framework: %v", ev)
	}
	again.streamEnd(wait)
}

func TestTeardown(t *testing.T) {
	c := newSim(t, 1, nil)
	m := newMGO(t, c.URL(), false)
	info := frameworkInfo("teardown")
	info.ID = m.subscribe(info).FrameworkID
	o := m.offer(wait)
	runTask(t, m, o, "t1")
	m.mustCall(&scheduler.Call{Type: scheduler.Call_TEARDOWN})
	m.streamEnd(wait)
	st := c.Snapshot()
	if len(st.CompletedFrameworks) != 1 || st.Agents[0].Tasks != 0 {
		t.Fatalf("after teardown: %+v", st)
	}
}

// mesos-go follows a 307 for SUBSCRIBE only; its later calls still go to
// the configured endpoint, and a follower redirects those too, as a real
// master does. A client must therefore address the leader it subscribed to
// (regent's core does).
func TestRedirectToLeader(t *testing.T) {
	c := newSim(t, 1, func(cfg *Config) { cfg.Masters = 3 })
	follower := c.URLs()[2]
	m := newMGO(t, follower, false)
	sub := m.subscribe(frameworkInfo("redirected"))
	if sub.MasterInfo.GetAddress().GetPort() == 0 || !strings.HasSuffix(c.LeaderURL(), ":"+strconv.Itoa(int(sub.MasterInfo.Address.Port))) {
		t.Fatalf("subscribed to %v, leader is %s", sub.MasterInfo.Address, c.LeaderURL())
	}
	err := m.call(calls.Revive())
	if err == nil || !strings.Contains(err.Error(), "redirect") {
		t.Fatalf("call to a follower: %v, want a redirect error", err)
	}
}

func TestMasterFailover(t *testing.T) {
	c := newSim(t, 2, func(cfg *Config) { cfg.Masters = 2 })
	m := newMGO(t, c.URLs()[0], false)
	info := frameworkInfo("master-failover")
	info.ID = m.subscribe(info).FrameworkID
	oldMaster := c.MasterID()
	ev := m.next(wait, func(ev *scheduler.Event) bool {
		return ev.Type == scheduler.Event_OFFERS && len(ev.Offers.Offers) == 2
	})
	o1, o := ev.Offers.Offers[0], ev.Offers.Offers[1]
	runTask(t, m, o1, "t1")
	c.HoldLaunches(true)
	m.launch(o, commandTask("in-flight", o.AgentID, "sleep 600")) // still on its way when the master fails
	if st := c.Snapshot(); st.Frameworks[0].Tasks[0].ID != "in-flight" || st.Frameworks[0].Tasks[0].State != "TASK_STAGING" {
		t.Fatalf("in-flight task not staging at failover: %+v", st.Frameworks[0].Tasks)
	}
	c.FailoverMaster(0)
	c.HoldLaunches(false)
	if err := m.streamEnd(wait); err == nil {
		t.Fatal("stream ended without error")
	}
	if c.MasterID() == oldMaster {
		t.Fatal("master id unchanged by failover")
	}
	// A client of the old leader is redirected to the new one for SUBSCRIBE;
	// the scheduler then talks to the leader it subscribed to.
	newMGO(t, c.URLs()[0], false).subscribe(info)
	m = newMGO(t, c.LeaderURL(), false)
	m.subscribe(info)
	// While the agent re-registers, the master cannot answer for its tasks.
	m.mustCall(calls.Reconcile(calls.ReconcileTasks(map[string]string{"t1": o1.AgentID.Value, "in-flight": o.AgentID.Value})))
	// No answer, ever, to a reconciliation sent while the agent re-registers.
	m.none(800*time.Millisecond, isType(scheduler.Event_UPDATE), "reconciliation answer for a recovering agent")
	eventually(t, func() bool { return c.Snapshot().Agents[1].State == AgentActive }, "agents re-registered")
	m.mustCall(calls.Reconcile(calls.ReconcileTasks(map[string]string{"t1": o1.AgentID.Value, "in-flight": o.AgentID.Value})))
	got := m.updates("t1", "in-flight")
	if got["t1"].GetState() != mesos.TASK_RUNNING || got["in-flight"].GetState() != mesos.TASK_LOST {
		t.Fatalf("after master failover: %v, want t1 RUNNING and the lost launch TASK_LOST", got)
	}
	if c.Snapshot().Stats.LaunchesLost != 1 {
		t.Fatalf("stats = %+v", c.Snapshot().Stats)
	}
}

func TestAgentPartitionAndRemoval(t *testing.T) {
	for _, aware := range []bool{true, false} {
		t.Run(map[bool]string{true: "partition-aware", false: "legacy"}[aware], func(t *testing.T) {
			c := newSim(t, 2, nil)
			m := newMGO(t, c.URL(), false)
			var caps []mesos.FrameworkInfo_Capability_Type
			if aware {
				caps = append(caps, mesos.FrameworkInfo_Capability_PARTITION_AWARE)
			}
			m.subscribe(frameworkInfo("agents", caps...))
			ev := m.next(wait, func(ev *scheduler.Event) bool {
				return ev.Type == scheduler.Event_OFFERS && len(ev.Offers.Offers) == 2
			})
			o1, o2 := ev.Offers.Offers[0], ev.Offers.Offers[1]
			runTask(t, m, o1, "t1")
			runTask(t, m, o2, "t2")

			if err := c.PartitionAgent(o1.AgentID.Value); err != nil {
				t.Fatal(err)
			}
			m.next(wait, func(ev *scheduler.Event) bool {
				return ev.Type == scheduler.Event_FAILURE && ev.Failure.AgentID.GetValue() == o1.AgentID.Value
			})
			want := map[bool]mesos.TaskState{true: mesos.TASK_UNREACHABLE, false: mesos.TASK_LOST}[aware]
			if st := m.next(wait, updateFor("t1")).Update.Status; st.GetState() != want || len(st.UUID) != 0 {
				t.Fatalf("partitioned task: %v, want %v without uuid", st, want)
			}
			if err := c.RestoreAgent(o1.AgentID.Value); err != nil {
				t.Fatal(err)
			}
			m.mustCall(calls.Reconcile(calls.ReconcileTasks(map[string]string{"t1": o1.AgentID.Value})))
			st := m.next(wait, updateFor("t1")).Update.Status
			if aware && st.GetState() != mesos.TASK_RUNNING {
				t.Fatalf("restored task of partition-aware framework: %v, want RUNNING", st.GetState())
			}
			if !aware && st.GetState() != mesos.TASK_LOST {
				t.Fatalf("restored task of legacy framework: %v, want LOST (it was shut down)", st.GetState())
			}

			if err := c.RemoveAgent(o2.AgentID.Value); err != nil {
				t.Fatal(err)
			}
			want = map[bool]mesos.TaskState{true: mesos.TASK_GONE_BY_OPERATOR, false: mesos.TASK_LOST}[aware]
			if st := m.next(wait, updateFor("t2")).Update.Status; st.GetState() != want {
				t.Fatalf("task on removed agent: %v, want %v", st.GetState(), want)
			}
			if err := c.RemoveAgent(o2.AgentID.Value); err == nil {
				t.Fatal("removing a gone agent twice succeeded")
			}
		})
	}
}

func TestOfferTimeoutRescinds(t *testing.T) {
	c := newSim(t, 1, func(cfg *Config) { cfg.OfferTimeout = 200 * time.Millisecond })
	m := newMGO(t, c.URL(), false)
	m.subscribe(frameworkInfo("rescind", mesos.FrameworkInfo_Capability_PARTITION_AWARE))
	o := m.offer(wait)
	ev := m.next(wait, isType(scheduler.Event_RESCIND))
	if ev.Rescind.OfferID.Value != o.ID.Value {
		t.Fatalf("rescinded %v, want %v", ev.Rescind.OfferID, o.ID)
	}
	m.launch(o, commandTask("late", o.AgentID, "true"))
	if st := m.next(wait, updateFor("late")).Update.Status; st.GetState() != mesos.TASK_DROPPED {
		t.Fatalf("launch on rescinded offer: %v", st.GetState())
	}
}

func TestStalledStreamAndInjectedFailures(t *testing.T) {
	c := newSim(t, 1, nil)
	m := newMGO(t, c.URL(), false)
	m.subscribe(frameworkInfo("stall"))
	m.next(wait, isType(scheduler.Event_HEARTBEAT))
	c.StallStreams(true)
	m.none(700*time.Millisecond, func(*scheduler.Event) bool { return true }, "event on a stalled stream")
	c.StallStreams(false)
	m.next(wait, isType(scheduler.Event_HEARTBEAT))

	// mesos-go retries a failed SUBSCRIBE on its own (up to 9 times).
	m2 := newMGO(t, c.URL(), true)
	c.FailNextRequests(2)
	m2.subscribe(frameworkInfo("retry"))
}

func TestFailureRateAndTaskDuration(t *testing.T) {
	c := newSim(t, 1, func(cfg *Config) {
		cfg.TaskDuration = 100 * time.Millisecond
		cfg.FailureRate = 1
	})
	m := newMGO(t, c.URL(), false)
	m.subscribe(frameworkInfo("flaky"))
	o := m.offer(wait)
	m.launch(o, commandTask("f", o.AgentID, "./serve"), commandTask("x", o.AgentID, "exit 3"))
	for _, id := range []string{"f", "x"} {
		for {
			st := m.next(wait, updateFor(id)).Update.Status
			m.ack(st)
			if st.GetState() == mesos.TASK_FAILED {
				break
			}
			if isTerminal(st.GetState()) {
				t.Fatalf("%s ended %v, want TASK_FAILED", id, st.GetState())
			}
		}
	}
}

func eventually(t testing.TB, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for: %s", what)
}
