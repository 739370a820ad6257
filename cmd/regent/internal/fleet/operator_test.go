package fleet

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/regent-sched/regent/core"
)

func TestBlacklistRequests(t *testing.T) {
	listed := State{NextTask: 5, Agents: map[string]Agent{
		"A1": {Hostname: "h1", Failures: 2, NotBefore: t0.Add(-time.Second)},
		"A2": {Blacklisted: true, BlacklistedAt: t0.Add(-time.Hour), Reason: "disk", Failures: 3},
	}}
	for _, tc := range []struct {
		name    string
		state   State
		tasks   taskTable
		payload any
		send    bool // Send rather than Ask
		want    []string
		wantErr error
		result  *BlacklistResult
		check   func(*testing.T, State)
	}{{
		name:    "blacklist kills the agent's task",
		state:   listed,
		tasks:   tasks("web-000004@A1:TASK_RUNNING", "web-000003@A3:TASK_RUNNING"),
		payload: Blacklist{AgentID: "A1", Reason: "bad disk"},
		want:    []string{"kill web-000004", "reply 7"},
		result: &BlacklistResult{Changed: true, KilledTask: "web-000004", Agent: AgentView{ID: "A1", Hostname: "h1",
			Blacklisted: true, Reason: "bad disk", BlacklistedAt: t0, TaskID: "web-000004", TaskState: "TASK_RUNNING", Failures: 2}},
		check: func(t *testing.T, s State) {
			if a := s.Agents["A1"]; !a.Blacklisted || a.Reason != "bad disk" || !a.BlacklistedAt.Equal(t0) {
				t.Fatalf("agent %+v", a)
			}
		},
	}, {
		name:    "a pointer request works too",
		state:   listed,
		payload: &Blacklist{AgentID: "A1"},
		want:    []string{"reply 7"},
		result:  &BlacklistResult{Changed: true, Agent: AgentView{ID: "A1", Hostname: "h1", Blacklisted: true, BlacklistedAt: t0, Failures: 2}},
	}, {
		name:    "blacklisting again changes nothing but kills a live task again",
		state:   listed,
		tasks:   tasks("web-000004@A2:TASK_KILLING"),
		payload: Blacklist{AgentID: "A2", Reason: "other"},
		want:    []string{"kill web-000004", "reply 7"},
		result: &BlacklistResult{Changed: false, KilledTask: "web-000004", Agent: AgentView{ID: "A2", Blacklisted: true, Reason: "disk",
			BlacklistedAt: t0.Add(-time.Hour), TaskID: "web-000004", TaskState: "TASK_KILLING", Failures: 3}},
		check: func(t *testing.T, s State) {
			if !reflect.DeepEqual(s, listed) {
				t.Fatalf("state changed: %+v", s)
			}
		},
	}, {
		name:    "blacklisting again without a live task kills nothing",
		state:   listed,
		tasks:   tasks("web-000004@A2:TASK_KILLED"),
		payload: Blacklist{AgentID: "A2"},
		want:    []string{"reply 7"},
		result: &BlacklistResult{Changed: false, Agent: AgentView{ID: "A2", Blacklisted: true, Reason: "disk",
			BlacklistedAt: t0.Add(-time.Hour), Failures: 3}},
	}, {
		name:    "an agent known only by its task can be blacklisted",
		tasks:   tasks("web-000001@A7:TASK_UNREACHABLE"),
		payload: Blacklist{AgentID: "A7", Reason: "r"},
		want:    []string{"kill web-000001", "reply 7"},
		result: &BlacklistResult{Changed: true, KilledTask: "web-000001", Agent: AgentView{ID: "A7", Blacklisted: true, Reason: "r",
			BlacklistedAt: t0, TaskID: "web-000001", TaskState: "TASK_UNREACHABLE"}},
	}, {
		name:    "blacklisting an unknown agent fails",
		state:   listed,
		payload: Blacklist{AgentID: "A9"},
		want:    []string{"reply 7 error"},
		wantErr: ErrUnknownAgent,
	}, {
		name:    "blacklisting a bad id fails",
		state:   listed,
		payload: Blacklist{AgentID: "A1/../A2"},
		want:    []string{"reply 7 error"},
		wantErr: ErrBadAgentID,
	}, {
		name:    "a blacklist sent without waiting is applied, unanswered",
		state:   listed,
		tasks:   tasks("web-000004@A1:TASK_STAGING"),
		payload: Blacklist{AgentID: "A1"},
		send:    true,
		want:    []string{"kill web-000004"},
		check: func(t *testing.T, s State) {
			if !s.Agents["A1"].Blacklisted {
				t.Fatal("not blacklisted")
			}
		},
	}, {
		name:    "unblacklist clears the record and revives",
		state:   listed,
		payload: Unblacklist{AgentID: "A2"},
		want:    []string{"revive", "reply 7"},
		result:  &BlacklistResult{Changed: true, Agent: AgentView{ID: "A2"}},
		check: func(t *testing.T, s State) {
			if a := s.Agents["A2"]; !reflect.DeepEqual(a, Agent{}) {
				t.Fatalf("agent %+v", a)
			}
		},
	}, {
		name:    "unblacklisting again changes nothing",
		state:   listed,
		payload: &Unblacklist{AgentID: "A1"},
		want:    []string{"reply 7"},
		result:  &BlacklistResult{Changed: false, Agent: AgentView{ID: "A1", Hostname: "h1", Failures: 2}},
		check: func(t *testing.T, s State) {
			if !reflect.DeepEqual(s, listed) {
				t.Fatalf("state changed: %+v", s)
			}
		},
	}, {
		name:    "unblacklisting an unknown agent fails",
		state:   listed,
		payload: Unblacklist{AgentID: "A9"},
		want:    []string{"reply 7 error"},
		wantErr: ErrUnknownAgent,
	}, {
		name:    "unblacklisting a bad id fails",
		payload: Unblacklist{AgentID: ""},
		want:    []string{"reply 7 error"},
		wantErr: ErrBadAgentID,
	}, {
		name:    "an unknown request is answered with an error",
		payload: "status?",
		want:    []string{"reply 7 error"},
	}, {
		name:    "an unknown message sent without waiting is ignored",
		payload: "status?",
		send:    true,
	}, {
		name:    "a nil request is answered with an error",
		payload: (*Blacklist)(nil),
		want:    []string{"reply 7 error"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			f := testFramework(t)
			msg := ask(7, tc.payload)
			msg.Request = !tc.send
			s, acts := f.Handle(clone(tc.state), core.Input{Event: msg, Now: t0, Tasks: tc.tasks})
			checkActions(t, acts, tc.want...)
			if tc.send {
				if tc.check != nil {
					tc.check(t, s)
				}
				return
			}
			r := replyOf(t, acts)
			switch {
			case tc.wantErr != nil:
				if !errors.Is(r.Err, tc.wantErr) || r.Value != nil {
					t.Fatalf("reply %+v, want an error wrapping %v", r, tc.wantErr)
				}
				if !strings.Contains(r.Err.Error(), agentOf(tc.payload)) {
					t.Fatalf("error %q does not name the agent", r.Err)
				}
				if !reflect.DeepEqual(s, tc.state) && !(s.Agents != nil && len(s.Agents) == 0 && tc.state.Agents == nil) {
					t.Fatalf("state changed by a failed request: %+v", s)
				}
			case tc.result != nil:
				if r.Err != nil || !reflect.DeepEqual(r.Value, *tc.result) {
					t.Fatalf("reply %+v %v\n want %+v", r.Value, r.Err, *tc.result)
				}
			}
			if tc.check != nil {
				tc.check(t, s)
			}
		})
	}
}

// agentOf is the agent id a request names.
func agentOf(p any) string {
	switch p := p.(type) {
	case Blacklist:
		return p.AgentID
	case Unblacklist:
		return p.AgentID
	}
	return ""
}

// A blacklisted agent never gets a task, whatever happens, until it is
// unblacklisted; then it gets one at once.
func TestBlacklistFlow(t *testing.T) {
	f := testFramework(t)
	s := State{}
	now := t0
	step := func(ev core.Event, tt taskTable, want ...string) []core.Action {
		t.Helper()
		var acts []core.Action
		s, acts = f.Handle(s, core.Input{Event: ev, Now: now, Tasks: tt})
		checkActions(t, acts, want...)
		return acts
	}
	step(offersEv(offer("O1", "A1", 1, 128)), nil, "launch web-000000 on A1 with O1")
	tt := tasks("web-000000@A1:TASK_RUNNING")
	r := replyOf(t, step(ask(1, Blacklist{AgentID: "A1", Reason: "maintenance"}), tt, "kill web-000000", "reply 1"))
	if res := r.Value.(BlacklistResult); !res.Changed || res.KilledTask != "web-000000" {
		t.Fatalf("blacklist result %+v", res)
	}
	// The task is still being killed: the slot stays taken.
	step(offersEv(offer("O2", "A1", 1, 128)), tt, "decline O2 for 5m0s")
	now = now.Add(time.Second)
	step(update(tt["web-000000"], mesos.TASK_KILLED), tt, "forget web-000000")
	for i := 0; i < 5; i++ {
		now = now.Add(10 * time.Minute)
		step(offersEv(offer("O3", "A1", 1, 128)), nil, "decline O3 for 5m0s")
	}
	if s.Agents["A1"].Failures != 0 {
		t.Fatalf("a kill by blacklisting counted as a failure: %+v", s.Agents["A1"])
	}
	step(ask(2, Unblacklist{AgentID: "A1"}), nil, "revive", "reply 2")
	step(offersEv(offer("O4", "A1", 1, 128)), nil, "launch web-000001 on A1 with O4")
}

func TestListRequests(t *testing.T) {
	f := testFramework(t)
	s := State{NextTask: 9, Agents: map[string]Agent{
		"A3": {Hostname: "h3", LastOffer: t0.Add(-time.Minute)},
		"A1": {Hostname: "h1", Blacklisted: true, Reason: "r", BlacklistedAt: t0.Add(-time.Hour), LastExit: &Exit{TaskID: "web-000001", State: "TASK_KILLED"}},
		"A2": {Hostname: "h2", Failures: 2, NotBefore: t0.Add(2 * time.Second), Gone: true},
	}}
	tt := tasks("web-000008@A3:TASK_RUNNING", "web-000007@A4:TASK_STAGING", "web-000002@A2:TASK_FAILED")
	in := func(p any) core.Input { return core.Input{Event: ask(1, p), Now: t0, Tasks: tt} }

	_, acts := f.Handle(s, in(ListAgents{}))
	agents := replyOf(t, acts).Value.([]AgentView)
	want := []AgentView{
		{ID: "A1", Hostname: "h1", Blacklisted: true, Reason: "r", BlacklistedAt: t0.Add(-time.Hour), LastExit: &Exit{TaskID: "web-000001", State: "TASK_KILLED"}},
		{ID: "A2", Hostname: "h2", Failures: 2, NextLaunch: t0.Add(2 * time.Second), Gone: true},
		{ID: "A3", Hostname: "h3", LastOffer: t0.Add(-time.Minute), TaskID: "web-000008", TaskState: "TASK_RUNNING"},
		{ID: "A4", TaskID: "web-000007", TaskState: "TASK_STAGING"},
	}
	if !reflect.DeepEqual(agents, want) {
		t.Fatalf("agents\n got  %+v\n want %+v", agents, want)
	}
	// The reply shares nothing with the state.
	agents[0].LastExit.State = "changed"
	if s.Agents["A1"].LastExit.State != "TASK_KILLED" {
		t.Fatal("the reply aliases the state")
	}

	_, acts = f.Handle(s, in(&ListBlacklist{}))
	if bl := replyOf(t, acts).Value.([]AgentView); len(bl) != 1 || bl[0].ID != "A1" {
		t.Fatalf("blacklist %+v", bl)
	}
	_, acts = f.Handle(State{}, core.Input{Event: ask(1, ListBlacklist{}), Now: t0})
	if bl := replyOf(t, acts).Value.([]AgentView); bl == nil || len(bl) != 0 {
		t.Fatalf("empty blacklist %#v: want an empty, non-nil list (JSON [])", bl)
	}

	_, acts = f.Handle(s, in(ListTasks{}))
	ts := replyOf(t, acts).Value.([]core.Task)
	var ids []string
	for _, tk := range ts {
		ids = append(ids, tk.ID)
	}
	if !reflect.DeepEqual(ids, []string{"web-000002", "web-000007", "web-000008"}) || ts[2].AgentID != "A3" {
		t.Fatalf("tasks %+v", ts)
	}
	ts[2].Data[0] = 'X'
	if string(tt["web-000008"].Data) != "A3" {
		t.Fatal("the reply aliases core's task records")
	}
	if b, err := json.Marshal(agents); err != nil || !strings.Contains(string(b), `"next_launch"`) || strings.Contains(string(b), `"blacklisted_at":"0001`) {
		t.Fatalf("json %s %v", b, err)
	}
}

func TestValidAgentID(t *testing.T) {
	for _, id := range []string{"a", "20240101-000000-1-5050-S12", "ab.c_d:e-F", strings.Repeat("a", 255)} {
		if err := ValidAgentID(id); err != nil {
			t.Errorf("%q: %v", id, err)
		}
	}
	for id, want := range map[string]string{
		"":                       "empty",
		strings.Repeat("a", 256): "256 bytes",
		"a/b":                    `byte 1 is '/'`,
		"a b":                    `byte 1 is ' '`,
		"é":                      "byte 0",
		"a\n":                    `byte 1 is '\n'`,
	} {
		err := ValidAgentID(id)
		if !errors.Is(err, ErrBadAgentID) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want ErrBadAgentID saying %q", id, err, want)
		}
	}
}
