package fleet

import (
	"reflect"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/regent-sched/regent/core"
)

func TestTaskUpdates(t *testing.T) {
	withAgent := func(a Agent) State { return State{NextTask: 9, Agents: map[string]Agent{"A1": a}} }
	failed := func(prev core.Task) core.TaskUpdate {
		u := update(prev, mesos.TASK_FAILED)
		u.Status.Message = str("exit status 1")
		u.Status.Reason = mesos.REASON_COMMAND_EXECUTOR_FAILED.Enum()
		return u
	}
	noAgent := update(running("web-000003", "A1", 10*time.Second), mesos.TASK_FAILED)
	noAgent.Status.AgentID = nil
	dataOnly := running("web-000003", "", 10*time.Second)
	dataOnly.Data = []byte("A1")
	long := update(running("web-000003", "A1", time.Second), mesos.TASK_FAILED)
	long.Status.Message = str(strings.Repeat("é", maxMessage))

	for _, tc := range []struct {
		name  string
		state State
		ev    core.TaskUpdate
		want  []string
		check func(*testing.T, Agent)
	}{{
		name:  "a first failure backs off BackoffMin and revives",
		state: withAgent(Agent{Hostname: "h"}),
		ev:    failed(running("web-000003", "A1", 10*time.Second)),
		want:  []string{"forget web-000003", "revive"},
		check: func(t *testing.T, a Agent) {
			want := Agent{Hostname: "h", Failures: 1, NotBefore: t0.Add(time.Second), LastExit: &Exit{
				TaskID: "web-000003", State: "TASK_FAILED", Reason: "REASON_COMMAND_EXECUTOR_FAILED", Message: "exit status 1", At: t0}}
			if !reflect.DeepEqual(a, want) {
				t.Fatalf("agent\n got  %+v %+v\n want %+v %+v", a, a.LastExit, want, want.LastExit)
			}
		},
	}, {
		name:  "the backoff doubles",
		state: withAgent(Agent{Failures: 3}),
		ev:    failed(running("web-000003", "A1", 10*time.Second)),
		want:  []string{"forget web-000003", "revive"},
		check: backoff(4, 8*time.Second),
	}, {
		name:  "the backoff is capped",
		state: withAgent(Agent{Failures: 6}),
		ev:    failed(running("web-000003", "A1", 10*time.Second)),
		want:  []string{"forget web-000003", "revive"},
		check: backoff(7, 60*time.Second),
	}, {
		name:  "the backoff stays capped",
		state: withAgent(Agent{Failures: 1 << 40}),
		ev:    failed(running("web-000003", "A1", 10*time.Second)),
		want:  []string{"forget web-000003", "revive"},
		check: backoff(1<<40+1, 60*time.Second),
	}, {
		name:  "a task that ran ResetAfter resets the count",
		state: withAgent(Agent{Failures: 5}),
		ev:    failed(running("web-000003", "A1", 60*time.Second)),
		want:  []string{"forget web-000003", "revive"},
		check: backoff(1, time.Second),
	}, {
		name:  "a task that ran less does not",
		state: withAgent(Agent{Failures: 5}),
		ev:    failed(running("web-000003", "A1", 59*time.Second)),
		want:  []string{"forget web-000003", "revive"},
		check: backoff(6, 32*time.Second),
	}, {
		name:  "a reconciliation answer does not hide how long it ran",
		state: withAgent(Agent{Failures: 5, RunningSince: t0.Add(-2 * time.Hour)}),
		ev:    failed(running("web-000003", "A1", 5*time.Second)),
		want:  []string{"forget web-000003", "revive"},
		check: func(t *testing.T, a Agent) {
			backoff(1, time.Second)(t, a)
			if !a.RunningSince.IsZero() {
				t.Fatalf("RunningSince %v kept after the task ended", a.RunningSince)
			}
		},
	}, {
		name:  "a task that never ran does not reset, however old",
		state: withAgent(Agent{Failures: 2}),
		ev:    failed(core.Task{ID: "web-000003", AgentID: "A1", State: mesos.TASK_STARTING, Updated: t0.Add(-time.Hour)}),
		want:  []string{"forget web-000003", "revive"},
		check: backoff(3, 4*time.Second),
	}, {
		name:  "finishing counts like failing",
		state: withAgent(Agent{}),
		ev:    update(running("web-000003", "A1", time.Second), mesos.TASK_FINISHED),
		want:  []string{"forget web-000003", "revive"},
		check: func(t *testing.T, a Agent) {
			backoff(1, time.Second)(t, a)
			if a.LastExit == nil || a.LastExit.State != "TASK_FINISHED" {
				t.Fatalf("last exit %+v", a.LastExit)
			}
		},
	}, {
		name:  "every terminal state counts",
		state: withAgent(Agent{Failures: 1}),
		ev:    update(running("web-000003", "A1", time.Second), mesos.TASK_GONE_BY_OPERATOR),
		want:  []string{"forget web-000003", "revive"},
		check: backoff(2, 2*time.Second),
	}, {
		name:  "a blacklisted agent records the exit but relaunches nothing",
		state: withAgent(Agent{Blacklisted: true, Failures: 2}),
		ev:    update(running("web-000003", "A1", time.Second), mesos.TASK_KILLED),
		want:  []string{"forget web-000003"},
		check: func(t *testing.T, a Agent) {
			if a.Failures != 2 || !a.NotBefore.IsZero() || a.LastExit == nil || a.LastExit.State != "TASK_KILLED" {
				t.Fatalf("agent %+v", a)
			}
		},
	}, {
		name:  "a repeated end is not counted twice",
		state: withAgent(Agent{Failures: 1, NotBefore: t0.Add(time.Second)}),
		ev:    update(core.Task{ID: "web-000003", AgentID: "A1", State: mesos.TASK_FAILED, Updated: t0.Add(-time.Second)}, mesos.TASK_FAILED),
		want:  []string{"forget web-000003"},
		check: backoff(1, time.Second),
	}, {
		name:  "the agent comes from the record when the status has none",
		state: withAgent(Agent{}),
		ev:    noAgent,
		want:  []string{"forget web-000003", "revive"},
		check: backoff(1, time.Second),
	}, {
		name:  "or from the launch's data",
		state: withAgent(Agent{}),
		ev: func() core.TaskUpdate {
			u := update(dataOnly, mesos.TASK_FAILED)
			u.Status.AgentID = nil
			return u
		}(),
		want:  []string{"forget web-000003", "revive"},
		check: backoff(1, time.Second),
	}, {
		name:  "an agent first seen in an update is recorded",
		state: State{},
		ev:    update(running("web-000003", "A1", time.Second), mesos.TASK_LOST),
		want:  []string{"forget web-000003", "revive"},
		check: backoff(1, time.Second),
	}, {
		name:  "a long message is cut",
		state: withAgent(Agent{}),
		ev:    long,
		want:  []string{"forget web-000003", "revive"},
		check: func(t *testing.T, a Agent) {
			if m := a.LastExit.Message; len(m) > maxMessage || !strings.HasPrefix(long.Status.GetMessage(), m) || len(m) < maxMessage-1 {
				t.Fatalf("message of %d bytes", len(m))
			}
		},
	}, {
		name:  "a task that starts running is noted",
		state: withAgent(Agent{Failures: 2}),
		ev:    update(core.Task{ID: "web-000003", AgentID: "A1", State: mesos.TASK_STARTING}, mesos.TASK_RUNNING),
		check: func(t *testing.T, a Agent) {
			if !a.RunningSince.Equal(t0) || a.Failures != 2 {
				t.Fatalf("agent %+v", a)
			}
		},
	}, {
		name:  "a running task keeps its start through reconciliation and partitions",
		state: withAgent(Agent{RunningSince: t0.Add(-time.Hour)}),
		ev:    update(core.Task{ID: "web-000003", AgentID: "A1", State: mesos.TASK_UNREACHABLE}, mesos.TASK_RUNNING),
		check: func(t *testing.T, a Agent) {
			if !a.RunningSince.Equal(t0.Add(-time.Hour)) {
				t.Fatalf("RunningSince %v", a.RunningSince)
			}
		},
	}, {
		name:  "a live task on a blacklisted agent is killed again",
		state: withAgent(Agent{Blacklisted: true}),
		ev:    update(core.Task{ID: "web-000003", AgentID: "A1", State: mesos.TASK_UNREACHABLE}, mesos.TASK_RUNNING),
		want:  []string{"kill web-000003"},
	}, {
		name:  "but not while it is being killed",
		state: withAgent(Agent{Blacklisted: true}),
		ev:    update(running("web-000003", "A1", time.Second), mesos.TASK_KILLING),
	}, {
		name:  "a state this code does not know is not terminal",
		state: withAgent(Agent{Failures: 1}),
		ev:    update(running("web-000003", "A1", time.Second), mesos.TaskState(99)),
		check: backoff(1, 0),
	}} {
		t.Run(tc.name, func(t *testing.T) {
			f := testFramework(t)
			before := clone(tc.state)
			s, acts := f.Handle(tc.state, core.Input{Event: tc.ev, Now: t0, Tasks: taskTable{tc.ev.Previous.ID: tc.ev.Previous}})
			checkActions(t, acts, tc.want...)
			if s.NextTask != before.NextTask {
				t.Fatalf("NextTask %d → %d", before.NextTask, s.NextTask)
			}
			if tc.check != nil {
				tc.check(t, s.Agents["A1"])
			}
		})
	}
}

func backoff(failures int, d time.Duration) func(*testing.T, Agent) {
	return func(t *testing.T, a Agent) {
		t.Helper()
		var want time.Time
		if d > 0 {
			want = t0.Add(d)
		}
		if a.Failures != failures || !a.NotBefore.Equal(want) {
			t.Fatalf("failures %d, not before %v; want %d, %v", a.Failures, a.NotBefore, failures, want)
		}
	}
}

// A command that exits at once is relaunched after 1, 2, 4, ... 60, 60 s,
// each time with a new, larger id, and its agent's offers are declined
// meanwhile for exactly the rest of the backoff.
func TestCrashLoopBacksOff(t *testing.T) {
	f := testFramework(t)
	s := State{}
	now := t0
	var ids []string
	var waits []time.Duration
	for i := 0; i < 10; i++ {
		s2, acts := f.Handle(s, core.Input{Event: offersEv(offer("O", "A1", 1, 128)), Now: now})
		s = s2
		if len(acts) != 1 {
			t.Fatalf("round %d at %v: %q", i, now, describe(acts))
		}
		l, ok := acts[0].(core.Launch)
		if !ok {
			t.Fatalf("round %d at %v: %q, want a launch", i, now, describe(acts))
		}
		id := l.Tasks[0].TaskID.Value
		ids = append(ids, id)
		tt := taskTable{id: {ID: id, AgentID: "A1", State: mesos.TASK_RUNNING, Launched: now, Updated: now}}
		// While the task lives, the agent is busy.
		_, acts = f.Handle(s, core.Input{Event: offersEv(offer("O", "A1", 1, 128)), Now: now, Tasks: tt})
		checkActions(t, acts, "decline O for 5m0s")
		// It dies 100 ms later.
		now = now.Add(100 * time.Millisecond)
		s, acts = f.Handle(s, core.Input{Event: update(tt[id], mesos.TASK_FAILED), Now: now, Tasks: tt})
		checkActions(t, acts, "forget "+id, "revive")
		wait := s.Agents["A1"].NotBefore.Sub(now)
		waits = append(waits, wait)
		// An offer right after the revive is declined for the backoff.
		_, acts = f.Handle(s, core.Input{Event: offersEv(offer("O", "A1", 1, 128)), Now: now})
		checkActions(t, acts, "decline O for "+wait.String())
		now = now.Add(wait)
	}
	wantWaits := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60, 60}
	for i := range wantWaits {
		wantWaits[i] *= time.Second
	}
	if !reflect.DeepEqual(waits, wantWaits) {
		t.Fatalf("backoffs %v, want %v", waits, wantWaits)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Fatalf("ids %v do not increase", ids)
		}
	}
	// A task that then runs for a minute resets the count.
	s, acts := f.Handle(s, core.Input{Event: offersEv(offer("O", "A1", 1, 128)), Now: now})
	checkActions(t, acts, "launch web-000010 on A1 with O")
	id := acts[0].(core.Launch).Tasks[0].TaskID.Value
	tt := taskTable{id: {ID: id, AgentID: "A1", State: mesos.TASK_STARTING, Launched: now, Updated: now}}
	s, _ = f.Handle(s, core.Input{Event: update(tt[id], mesos.TASK_RUNNING), Now: now, Tasks: tt})
	tt[id] = core.Task{ID: id, AgentID: "A1", State: mesos.TASK_RUNNING, Launched: now, Updated: now.Add(50 * time.Second)}
	now = now.Add(61 * time.Second)
	s, _ = f.Handle(s, core.Input{Event: update(tt[id], mesos.TASK_FAILED), Now: now, Tasks: tt})
	if a := s.Agents["A1"]; a.Failures != 1 || a.NotBefore != now.Add(time.Second) {
		t.Fatalf("after a long run: %+v", a)
	}
}

func TestAgentLost(t *testing.T) {
	f := testFramework(t)
	for _, tc := range []struct {
		name  string
		state State
		tasks taskTable
		agent string
		want  map[string]Agent
	}{
		{"a known agent is gone", State{Agents: map[string]Agent{"A1": {Hostname: "h"}}}, nil, "A1",
			map[string]Agent{"A1": {Hostname: "h", Gone: true}}},
		{"an agent of a task is recorded gone", State{}, tasks("web-000001@A1:TASK_RUNNING"), "A1",
			map[string]Agent{"A1": {Gone: true}}},
		{"an unknown agent is not recorded", State{}, nil, "A9", map[string]Agent{}},
		{"a bad id is ignored", State{}, nil, "", map[string]Agent{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, acts := f.Handle(tc.state, core.Input{Event: core.AgentLost{AgentID: tc.agent}, Now: t0, Tasks: tc.tasks})
			checkActions(t, acts)
			if !reflect.DeepEqual(s.Agents, tc.want) {
				t.Fatalf("agents %+v, want %+v", s.Agents, tc.want)
			}
		})
	}
}

// Events that need nothing change nothing, and Orphans are left to core.
func TestIgnoredEvents(t *testing.T) {
	type unknownEvent struct{ core.Tick }
	f := testFramework(t)
	orphan := mesos.TaskStatus{TaskID: mesos.TaskID{Value: "x"}, State: mesos.TASK_RUNNING.Enum(), AgentID: &mesos.AgentID{Value: "A1"}}
	for _, ev := range []core.Event{
		nil, core.Tick{}, core.Subscribed{FrameworkID: "fw"}, core.OfferRescinded{OfferID: "O1"},
		core.ExecutorLost{AgentID: "A1", ExecutorID: "e"}, core.FrameworkMessage{AgentID: "A1"},
		core.MesosError{Message: "boom"}, core.ReconciliationDone{}, core.Orphan{Status: orphan}, unknownEvent{},
	} {
		s := State{NextTask: 3, Agents: map[string]Agent{"A1": {Hostname: "h", Failures: 1}}}
		before := clone(s)
		got, acts := f.Handle(s, core.Input{Event: ev, Now: t0, Tasks: tasks("web-000001@A1:TASK_RUNNING")})
		if len(acts) != 0 || !reflect.DeepEqual(got, before) {
			t.Errorf("%T: actions %q, state %+v", ev, describe(acts), got)
		}
	}
}

// Handle survives inputs core would never send.
func TestNoPanics(t *testing.T) {
	f := testFramework(t)
	var nilTasks core.TaskView
	for _, in := range []core.Input{
		{},
		{Event: core.OffersReceived{}},
		{Event: core.OffersReceived{Offers: []mesos.Offer{{}}}},
		{Event: core.OffersReceived{Offers: []mesos.Offer{{ID: mesos.OfferID{Value: "O"}, AgentID: mesos.AgentID{Value: "A"},
			Resources: []mesos.Resource{{}}}}}},
		{Event: core.TaskUpdate{}},
		{Event: core.TaskUpdate{Status: mesos.TaskStatus{State: mesos.TASK_FAILED.Enum()}}},
		{Event: core.TaskUpdate{Status: mesos.TaskStatus{State: mesos.TASK_RUNNING.Enum(), AgentID: &mesos.AgentID{}}}},
		{Event: core.AgentLost{}, Tasks: nilTasks},
		{Event: core.UserMessage{Request: true}},
		{Event: core.UserMessage{Payload: (*Blacklist)(nil), Request: true}},
		{Event: core.UserMessage{Payload: (*Unblacklist)(nil)}},
		{Event: core.UserMessage{Payload: ListTasks{}, Request: true}},
		{Event: core.UserMessage{Payload: ListAgents{}, Request: true}},
		{Event: core.UserMessage{Payload: Blacklist{AgentID: strings.Repeat("x", 1000)}, Request: true}},
	} {
		f.Handle(State{}, in)
		f.Handle(State{Agents: map[string]Agent{"": {}, "A": {Blacklisted: true}}}, in)
	}
}
