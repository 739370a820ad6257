package core

import (
	"fmt"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// Every Mesos event reaches the framework as the right Event.
func TestEveryEventReachesTheFramework(t *testing.T) {
	status := int32(9)
	for _, tc := range []struct {
		ev   *scheduler.Event
		want Event
	}{
		{&scheduler.Event{Type: scheduler.Event_RESCIND, Rescind: &scheduler.Event_Rescind{OfferID: mesos.OfferID{Value: "o1"}}},
			OfferRescinded{OfferID: "o1"}},
		{&scheduler.Event{Type: scheduler.Event_FAILURE, Failure: &scheduler.Event_Failure{AgentID: &mesos.AgentID{Value: "a1"}}},
			AgentLost{AgentID: "a1"}},
		{&scheduler.Event{Type: scheduler.Event_FAILURE, Failure: &scheduler.Event_Failure{AgentID: &mesos.AgentID{Value: "a1"},
			ExecutorID: &mesos.ExecutorID{Value: "e1"}, Status: &status}},
			ExecutorLost{AgentID: "a1", ExecutorID: "e1", Status: &status}},
		{&scheduler.Event{Type: scheduler.Event_MESSAGE, Message: &scheduler.Event_Message{AgentID: mesos.AgentID{Value: "a1"},
			ExecutorID: mesos.ExecutorID{Value: "e1"}, Data: []byte("hi")}},
			FrameworkMessage{AgentID: "a1", ExecutorID: "e1", Data: []byte("hi")}},
		{&scheduler.Event{Type: scheduler.Event_ERROR, Error: &scheduler.Event_Error{Message: "boom"}},
			MesosError{Message: "boom"}},
	} {
		m, sc := newTestMachine(nil)
		m.mesosEvent(t0, tc.ev)
		if len(sc.seen) != 1 || fmt.Sprint(sc.seen[0]) != fmt.Sprint(tc.want) {
			t.Errorf("%v: framework saw %v, want %v", tc.ev.Type, sc.seen, tc.want)
		}
	}
}

// Malformed or unknown events are counted or ignored, never a crash.
func TestMalformedEventsDoNotCrash(t *testing.T) {
	m, _ := newTestMachine(nil)
	for _, ev := range []*scheduler.Event{
		{Type: scheduler.Event_SUBSCRIBED},
		{Type: scheduler.Event_SUBSCRIBED, Subscribed: &scheduler.Event_Subscribed{}},
		{Type: scheduler.Event_OFFERS},
		{Type: scheduler.Event_RESCIND},
		{Type: scheduler.Event_UPDATE},
		{Type: scheduler.Event_FAILURE},
		{Type: scheduler.Event_FAILURE, Failure: &scheduler.Event_Failure{}},
		{Type: scheduler.Event_MESSAGE},
		{Type: scheduler.Event_ERROR},
		{Type: scheduler.Event_INVERSE_OFFERS},
		{Type: scheduler.Event_Type(99)},
		{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{Status: mesos.TaskStatus{}}},
	} {
		m.mesosEvent(t0, ev)
	}
	if m.counters.UnknownEvents != 2 {
		t.Fatalf("unknown events counted %d, want 2", m.counters.UnknownEvents)
	}
	if _, _, err := m.takeBatch(); err != nil {
		t.Fatal(err)
	}
}

// Every action turns into its Mesos call.
func TestActionsBecomeCalls(t *testing.T) {
	filters := &mesos.Filters{RefuseSeconds: ptr(30.0)}
	exec := &mesos.ExecutorInfo{Type: mesos.ExecutorInfo_DEFAULT, ExecutorID: mesos.ExecutorID{Value: "pod"}}
	m, _ := newTestMachine(func(in Input) []Action {
		switch ev := in.Event.(type) {
		case OffersReceived:
			l := launchOn(ev.Offers[0].ID.Value, "g1", "g2")
			l.Executor = exec
			return []Action{l, Decline{OfferIDs: []string{ev.Offers[1].ID.Value}, Filters: filters}}
		case UserMessage:
			return []Action{
				Kill{TaskID: "g1"}, Kill{TaskID: "unknown"},
				Suppress{}, Revive{},
				Reconcile{TaskIDs: []string{"g2"}}, Reconcile{},
				SendMessage{AgentID: "a", ExecutorID: "pod", Data: []byte("x")},
			}
		}
		return nil
	})
	m.mesosEvent(t0, subscribedEv("fw"))
	mustBatch(t, m)
	m.mesosEvent(t0, offersEv("o1", "o2"))
	_, effs := mustBatch(t, m)
	acc := find(effs, scheduler.Call_ACCEPT)
	if len(acc) != 1 || acc[0].Accept.Operations[0].Type != mesos.Offer_Operation_LAUNCH_GROUP ||
		len(acc[0].Accept.Operations[0].LaunchGroup.TaskGroup.Tasks) != 2 {
		t.Fatalf("task group launch: %v", acc)
	}
	if dec := find(effs, scheduler.Call_DECLINE); len(dec) != 1 || dec[0].Decline.Filters.GetRefuseSeconds() != 30 {
		t.Fatalf("decline with filters: %v", dec)
	}
	m.handle(t0, UserMessage{ID: 1})
	_, effs = mustBatch(t, m)
	got := fmt.Sprint(calls(effs))
	want := "[KILL SUPPRESS REVIVE RECONCILE RECONCILE MESSAGE]"
	if got != want {
		t.Fatalf("calls %s, want %s (Kill of an unknown task is dropped)", got, want)
	}
	if rec := find(effs, scheduler.Call_RECONCILE); len(rec[1].Reconcile.Tasks) != 2 {
		t.Fatalf("Reconcile{} asks for every non-terminal task: %v", rec[1])
	}
	if m.suppress {
		t.Fatal("suppress flag left on after Revive")
	}
}

// Periodic reconciliation starts by itself, without holding offers.
func TestPeriodicReconciliation(t *testing.T) {
	m, _ := newTestMachine(nil)
	m.mesosEvent(t0, subscribedEv("fw"))
	mustBatch(t, m)
	m.tick(t0.Add(14 * time.Minute))
	if _, effs := mustBatch(t, m); len(find(effs, scheduler.Call_RECONCILE)) != 0 {
		t.Fatal("reconciled before the interval")
	}
	m.tick(t0.Add(15 * time.Minute))
	_, effs := mustBatch(t, m)
	if len(find(effs, scheduler.Call_RECONCILE)) != 1 || m.counters.Reconciliations != 2 {
		t.Fatalf("periodic reconciliation: %v (%d runs)", calls(effs), m.counters.Reconciliations)
	}
	if len(find(effs, scheduler.Call_REVIVE)) != 0 {
		t.Fatal("a periodic run revived offers it never held")
	}
}
