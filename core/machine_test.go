package core

import (
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"go.uber.org/zap"

	"github.com/regent-sched/regent/persist"
)

// script is a framework for tests: it records every input and answers with
// whatever react returns.
type script struct {
	seen  []Event
	react func(in Input) []Action
}

type scriptState struct{ Count int }

func (s *script) Handle(st scriptState, in Input) (scriptState, []Action) {
	s.seen = append(s.seen, in.Event)
	st.Count++
	if s.react == nil {
		return st, nil
	}
	return st, s.react(in)
}

func testOptions() machineOptions {
	return machineOptions{
		defaultFilters:    &mesos.Filters{RefuseSeconds: ptr(5.0)},
		reconcileFilters:  &mesos.Filters{RefuseSeconds: ptr(5.0)},
		reconcileMin:      time.Second,
		reconcileMax:      8 * time.Second,
		reconcileInterval: 15 * time.Minute,
		stagingTimeout:    time.Minute,
		reconcileBatch:    2,
	}
}

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func newTestMachine(react func(Input) []Action) (*machine[scriptState], *script) {
	sc := &script{react: react}
	return newMachine[scriptState](sc, JSONCodec[scriptState]{}, testOptions(), zap.NewNop()), sc
}

func subscribedEv(id string) *scheduler.Event {
	return &scheduler.Event{Type: scheduler.Event_SUBSCRIBED, Subscribed: &scheduler.Event_Subscribed{
		FrameworkID: &mesos.FrameworkID{Value: id}}}
}

func offersEv(ids ...string) *scheduler.Event {
	var os []mesos.Offer
	for _, id := range ids {
		os = append(os, mesos.Offer{ID: mesos.OfferID{Value: id}, AgentID: mesos.AgentID{Value: "agent-" + id}})
	}
	return &scheduler.Event{Type: scheduler.Event_OFFERS, Offers: &scheduler.Event_Offers{Offers: os}}
}

func updateEv(task string, st mesos.TaskState, withUUID bool) *scheduler.Event {
	s := mesos.TaskStatus{TaskID: mesos.TaskID{Value: task}, State: st.Enum(), AgentID: &mesos.AgentID{Value: "a1"}}
	if withUUID {
		s.UUID = []byte("0123456789abcdef")
	}
	return &scheduler.Event{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{Status: s}}
}

// calls returns the types of the Mesos calls among effects.
func calls(effs []effect) []scheduler.Call_Type {
	var out []scheduler.Call_Type
	for _, e := range effs {
		if e.call != nil {
			out = append(out, e.call.Type)
		}
	}
	return out
}

func find(effs []effect, typ scheduler.Call_Type) []*scheduler.Call {
	var out []*scheduler.Call
	for _, e := range effs {
		if e.call != nil && e.call.Type == typ {
			out = append(out, e.call)
		}
	}
	return out
}

func mustBatch(t *testing.T, m *machine[scriptState]) (persist.Batch, []effect) {
	t.Helper()
	b, effs, err := m.takeBatch()
	if err != nil {
		t.Fatal(err)
	}
	return b, effs
}

func launchOn(offer string, ids ...string) Launch {
	l := Launch{OfferIDs: []string{offer}}
	for _, id := range ids {
		cmd := "sleep 60"
		l.Tasks = append(l.Tasks, mesos.TaskInfo{Name: id, TaskID: mesos.TaskID{Value: id},
			AgentID: mesos.AgentID{Value: "agent-" + offer}, Command: &mesos.CommandInfo{Value: &cmd}})
	}
	return l
}

func TestFirstSubscribeCommitsFrameworkIDAndReconcilesEmptyState(t *testing.T) {
	m, sc := newTestMachine(nil)
	m.mesosEvent(t0, subscribedEv("fw-1"))
	b, effs := mustBatch(t, m)
	if b.FrameworkID == nil || *b.FrameworkID != "fw-1" {
		t.Fatalf("batch FrameworkID = %v", b.FrameworkID)
	}
	// No tasks: implicit reconciliation at once, then offers are revived.
	got := calls(effs)
	if len(got) != 2 || got[0] != scheduler.Call_RECONCILE || got[1] != scheduler.Call_REVIVE {
		t.Fatalf("effects %v, want [RECONCILE REVIVE]", got)
	}
	if rec := find(effs, scheduler.Call_RECONCILE)[0]; len(rec.Reconcile.Tasks) != 0 {
		t.Fatalf("first reconcile is not implicit: %v", rec.Reconcile)
	}
	if _, ok := sc.seen[0].(Subscribed); !ok {
		t.Fatalf("framework saw %T first", sc.seen[0])
	}
	if _, ok := sc.seen[len(sc.seen)-1].(ReconciliationDone); !ok {
		t.Fatalf("framework did not see ReconciliationDone: %v", sc.seen)
	}
	// A second SUBSCRIBED with the same id changes nothing durable.
	m.mesosEvent(t0, subscribedEv("fw-1"))
	if b, _ := mustBatch(t, m); b.FrameworkID != nil {
		t.Fatal("re-subscribe with the same id rewrote the FrameworkID")
	}
}

func TestLaunchIsCommittedBeforeAccept(t *testing.T) {
	m, _ := newTestMachine(func(in Input) []Action {
		if ev, ok := in.Event.(OffersReceived); ok {
			return []Action{launchOn(ev.Offers[0].ID.Value, "t1", "t2")}
		}
		return nil
	})
	m.mesosEvent(t0, subscribedEv("fw"))
	mustBatch(t, m)
	m.mesosEvent(t0, offersEv("o1", "o2"))
	b, effs := mustBatch(t, m)
	if len(b.PutTasks) != 2 {
		t.Fatalf("batch tasks %v, want t1 and t2 (staging)", b.PutTasks)
	}
	if tk, _ := m.tasks.Get("t1"); tk.State != mesos.TASK_STAGING || tk.Launched != t0 || tk.AgentID != "agent-o1" {
		t.Fatalf("t1 = %+v", tk)
	}
	acc := find(effs, scheduler.Call_ACCEPT)
	if len(acc) != 1 || len(acc[0].Accept.Operations[0].Launch.TaskInfos) != 2 {
		t.Fatalf("accept = %v", acc)
	}
	// The unused offer is declined, with the default filter.
	dec := find(effs, scheduler.Call_DECLINE)
	if len(dec) != 1 || dec[0].Decline.OfferIDs[0].Value != "o2" || dec[0].Decline.Filters.GetRefuseSeconds() != 5 {
		t.Fatalf("decline = %v", dec)
	}
}

func TestDuplicateLaunchRefused(t *testing.T) {
	m, _ := newTestMachine(func(in Input) []Action {
		if ev, ok := in.Event.(OffersReceived); ok {
			return []Action{launchOn(ev.Offers[0].ID.Value, "same", "same")}
		}
		return nil
	})
	m.mesosEvent(t0, subscribedEv("fw"))
	m.mesosEvent(t0, offersEv("o1"))
	_, effs := mustBatch(t, m)
	acc := find(effs, scheduler.Call_ACCEPT)
	if len(acc[0].Accept.Operations[0].Launch.TaskInfos) != 1 || m.counters.DuplicateLaunch != 1 {
		t.Fatalf("accept %v, counters %+v", acc, m.counters)
	}
}

func TestUpdatesAreAcknowledgedAfterCommitAndTerminalTasksLeave(t *testing.T) {
	m, sc := newTestMachine(func(in Input) []Action {
		if ev, ok := in.Event.(OffersReceived); ok {
			return []Action{launchOn(ev.Offers[0].ID.Value, "t1")}
		}
		return nil
	})
	m.mesosEvent(t0, subscribedEv("fw"))
	m.mesosEvent(t0, offersEv("o1"))
	mustBatch(t, m)
	m.mesosEvent(t0.Add(time.Second), updateEv("t1", mesos.TASK_RUNNING, true))
	b, effs := mustBatch(t, m)
	if len(b.PutTasks) != 1 || len(find(effs, scheduler.Call_ACKNOWLEDGE)) != 1 {
		t.Fatalf("running: batch %v, effects %v", b, calls(effs))
	}
	last := sc.seen[len(sc.seen)-1].(TaskUpdate)
	if last.Previous.State != mesos.TASK_STAGING || last.Status.GetState() != mesos.TASK_RUNNING {
		t.Fatalf("framework saw %+v", last)
	}
	// No uuid (a reconciliation answer): no ack.
	m.mesosEvent(t0, updateEv("t1", mesos.TASK_RUNNING, false))
	if _, effs := mustBatch(t, m); len(find(effs, scheduler.Call_ACKNOWLEDGE)) != 0 {
		t.Fatal("acknowledged an update without uuid")
	}
	m.mesosEvent(t0, updateEv("t1", mesos.TASK_FINISHED, true))
	b, effs = mustBatch(t, m)
	if len(b.DeleteTasks) != 1 || m.tasks.Len() != 0 || len(find(effs, scheduler.Call_ACKNOWLEDGE)) != 1 {
		t.Fatalf("finished: batch %+v, tasks %d, effects %v", b, m.tasks.Len(), calls(effs))
	}
	// A late duplicate of the terminal update: acked, nothing killed.
	m.mesosEvent(t0, updateEv("t1", mesos.TASK_FINISHED, true))
	_, effs = mustBatch(t, m)
	if got := calls(effs); len(got) != 1 || got[0] != scheduler.Call_ACKNOWLEDGE {
		t.Fatalf("late terminal duplicate: %v", got)
	}
}

func TestEveryTaskStateIsHandled(t *testing.T) {
	for v := int32(0); v <= 20; v++ {
		st := mesos.TaskState(v)
		m, _ := newTestMachine(func(in Input) []Action {
			if ev, ok := in.Event.(OffersReceived); ok {
				return []Action{launchOn(ev.Offers[0].ID.Value, "t")}
			}
			return nil
		})
		m.mesosEvent(t0, subscribedEv("fw"))
		m.mesosEvent(t0, offersEv("o"))
		m.mesosEvent(t0, updateEv("t", st, true))
		_, effs := mustBatch(t, m)
		if len(find(effs, scheduler.Call_ACKNOWLEDGE)) != 1 {
			t.Errorf("%v: not acknowledged", st)
		}
		_, still := m.tasks.Get("t")
		if IsTerminal(st) == still {
			t.Errorf("%v: task still in state = %v", st, still)
		}
		if !knownState(st) && m.counters.UnknownTaskState != 1 {
			t.Errorf("%v: unknown state not counted", st)
		}
	}
}

func TestOrphansAreKilledUnlessAdopted(t *testing.T) {
	m, _ := newTestMachine(func(in Input) []Action {
		if o, ok := in.Event.(Orphan); ok && o.Status.TaskID.Value == "keep" {
			return []Action{Adopt{Status: o.Status, Data: []byte("slot-3")}}
		}
		return nil
	})
	m.mesosEvent(t0, subscribedEv("fw"))
	mustBatch(t, m)
	m.mesosEvent(t0, updateEv("stray", mesos.TASK_RUNNING, false))
	m.mesosEvent(t0, updateEv("keep", mesos.TASK_RUNNING, false))
	m.mesosEvent(t0, updateEv("gone", mesos.TASK_FAILED, true))
	b, effs := mustBatch(t, m)
	kills := find(effs, scheduler.Call_KILL)
	if len(kills) != 1 || kills[0].Kill.TaskID.Value != "stray" || kills[0].Kill.AgentID.GetValue() != "a1" {
		t.Fatalf("kills %v", kills)
	}
	if tk, ok := m.tasks.Get("keep"); !ok || string(tk.Data) != "slot-3" || len(b.PutTasks) != 1 {
		t.Fatalf("adopted: %+v %v", tk, b.PutTasks)
	}
	if m.counters.OrphansKilled != 1 || m.counters.OrphansAdopted != 1 {
		t.Fatalf("counters %+v", m.counters)
	}
}

func TestForgetKillsARunningTask(t *testing.T) {
	m, _ := newTestMachine(func(in Input) []Action {
		switch ev := in.Event.(type) {
		case OffersReceived:
			return []Action{launchOn(ev.Offers[0].ID.Value, "t1")}
		case UserMessage:
			return []Action{Forget{TaskID: "t1"}, Reply{To: ev.ID, Value: "ok"}}
		}
		return nil
	})
	m.mesosEvent(t0, subscribedEv("fw"))
	m.mesosEvent(t0, offersEv("o"))
	m.mesosEvent(t0, updateEv("t1", mesos.TASK_RUNNING, true))
	mustBatch(t, m)
	m.handle(t0, UserMessage{ID: 7, Payload: "forget", Request: true})
	b, effs := mustBatch(t, m)
	if len(b.DeleteTasks) != 1 || len(find(effs, scheduler.Call_KILL)) != 1 {
		t.Fatalf("forget: batch %+v effects %v", b, calls(effs))
	}
	if last := effs[len(effs)-1]; last.reply == nil || last.reply.To != 7 {
		t.Fatalf("reply not after the kill: %+v", last)
	}
}

func TestReconciliationBackoffAndOffersHeld(t *testing.T) {
	m, sc := newTestMachine(nil)
	snap := &persist.Snapshot{FrameworkID: "fw", Tasks: map[string][]byte{}}
	for _, id := range []string{"a", "b", "c"} {
		snap.Tasks[id] = []byte(`{"id":"` + id + `","agent_id":"ag","state":1}`)
	}
	snap.Tasks["done"] = []byte(`{"id":"done","state":2}`)
	if err := m.restore(snap); err != nil {
		t.Fatal(err)
	}
	m.mesosEvent(t0, subscribedEv("fw"))
	_, effs := mustBatch(t, m)
	rec := find(effs, scheduler.Call_RECONCILE)
	// Explicit, for the three non-terminal tasks, in batches of two.
	if len(rec) != 2 || len(rec[0].Reconcile.Tasks) != 2 || len(rec[1].Reconcile.Tasks) != 1 ||
		rec[0].Reconcile.Tasks[0].AgentID.GetValue() != "ag" {
		t.Fatalf("explicit reconcile %v", rec)
	}
	// Offers meanwhile are declined, without asking the framework.
	seen := len(sc.seen)
	m.mesosEvent(t0, offersEv("o"))
	if _, effs := mustBatch(t, m); len(find(effs, scheduler.Call_DECLINE)) != 1 || len(sc.seen) != seen {
		t.Fatalf("offer during reconciliation: %v", calls(effs))
	}
	// "a" answers; the rest is asked again after the backoff, not before.
	m.mesosEvent(t0, updateEv("a", mesos.TASK_RUNNING, false))
	m.tick(t0.Add(500 * time.Millisecond))
	if _, effs := mustBatch(t, m); len(find(effs, scheduler.Call_RECONCILE)) != 0 {
		t.Fatal("re-sent before the backoff")
	}
	m.tick(t0.Add(time.Second))
	_, effs = mustBatch(t, m)
	rec = find(effs, scheduler.Call_RECONCILE)
	if len(rec) != 1 || len(rec[0].Reconcile.Tasks) != 2 || m.rec.rounds != 2 {
		t.Fatalf("second round %v (rounds %d)", rec, m.rec.rounds)
	}
	// The backoff doubled: nothing at +2.5 s, a third round at +3 s.
	m.tick(t0.Add(2500 * time.Millisecond))
	if _, effs := mustBatch(t, m); len(find(effs, scheduler.Call_RECONCILE)) != 0 {
		t.Fatal("backoff did not double")
	}
	m.tick(t0.Add(3 * time.Second))
	mustBatch(t, m)
	// The last answers end the explicit phase at once: implicit, revive.
	m.mesosEvent(t0.Add(4*time.Second), updateEv("b", mesos.TASK_RUNNING, false))
	m.mesosEvent(t0.Add(4*time.Second), updateEv("c", mesos.TASK_LOST, false))
	_, effs = mustBatch(t, m)
	got := calls(effs)
	if len(got) != 2 || got[0] != scheduler.Call_RECONCILE || got[1] != scheduler.Call_REVIVE {
		t.Fatalf("end of reconciliation: %v", got)
	}
	st := m.rec.status()
	if st.Active || st.LastRounds != 3 || st.LastDuration != 4*time.Second {
		t.Fatalf("status %+v", st)
	}
	if _, ok := m.tasks.Get("c"); ok {
		t.Fatal("lost task still in state")
	}
}

func TestOverdueLaunchIsReconciled(t *testing.T) {
	m, _ := newTestMachine(func(in Input) []Action {
		if ev, ok := in.Event.(OffersReceived); ok {
			return []Action{launchOn(ev.Offers[0].ID.Value, "slow")}
		}
		return nil
	})
	m.mesosEvent(t0, subscribedEv("fw"))
	m.mesosEvent(t0, offersEv("o"))
	mustBatch(t, m)
	m.tick(t0.Add(30 * time.Second))
	if _, effs := mustBatch(t, m); len(find(effs, scheduler.Call_RECONCILE)) != 0 {
		t.Fatal("reconciled before the staging timeout")
	}
	m.tick(t0.Add(61 * time.Second))
	_, effs := mustBatch(t, m)
	rec := find(effs, scheduler.Call_RECONCILE)
	if len(rec) != 1 || rec[0].Reconcile.Tasks[0].TaskID.Value != "slow" {
		t.Fatalf("overdue: %v", rec)
	}
}

func TestRestoreRoundTrip(t *testing.T) {
	m, _ := newTestMachine(func(in Input) []Action {
		if ev, ok := in.Event.(OffersReceived); ok {
			l := launchOn(ev.Offers[0].ID.Value, "t1")
			l.Data = map[string][]byte{"t1": []byte("slot-1")}
			return []Action{l}
		}
		return nil
	})
	m.mesosEvent(t0, subscribedEv("fw"))
	m.mesosEvent(t0, offersEv("o"))
	b1, _ := mustBatch(t, m)
	m.mesosEvent(t0, updateEv("t1", mesos.TASK_RUNNING, true))
	b2, _ := mustBatch(t, m)
	snap := &persist.Snapshot{FrameworkID: *b1.FrameworkID, Tasks: b2.PutTasks, Entries: b2.PutEntries}
	if snap.Entries == nil {
		snap.Entries = b1.PutEntries
	}
	n, _ := newTestMachine(nil)
	if err := n.restore(snap); err != nil {
		t.Fatal(err)
	}
	tk, _ := n.tasks.Get("t1")
	if n.frameworkID != "fw" || tk.State != mesos.TASK_RUNNING || string(tk.Data) != "slot-1" || n.user.Count == 0 {
		t.Fatalf("restored %q %+v %+v", n.frameworkID, tk, n.user)
	}
	bad := &persist.Snapshot{Tasks: map[string][]byte{"x": []byte(`{"id":"y"}`)}}
	if err := n.restore(bad); err == nil {
		t.Fatal("a record naming another task was accepted")
	}
	if err := n.restore(&persist.Snapshot{Tasks: map[string][]byte{"x": []byte(`{`)}}); err == nil {
		t.Fatal("a corrupt record was accepted")
	}
}
