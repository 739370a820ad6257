package fleet

import (
	"reflect"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/regent-sched/regent/core"
)

func TestOffers(t *testing.T) {
	reserved := offer("O1", "A1", 4, 4096)
	for i := range reserved.Resources {
		reserved.Resources[i].Reservations = []mesos.Resource_ReservationInfo{{Type: mesos.Resource_ReservationInfo_DYNAMIC.Enum(), Role: str("*")}}
	}
	otherRole := offer("O1", "A1", 4, 4096)
	otherRole.AllocationInfo.Role = str("batch")
	for i := range otherRole.Resources {
		otherRole.Resources[i].AllocationInfo.Role = str("batch")
	}
	split := offer("O1", "A1", 0, 0)
	split.Resources = []mesos.Resource{res("cpus", 0.05, "*"), res("cpus", 0.05, "*"), res("mem", 16, "*"), res("mem", 16, "*")}
	legacy := offer("O1", "A1", 1, 128)
	legacy.AllocationInfo = nil
	for i := range legacy.Resources {
		legacy.Resources[i].AllocationInfo = nil
	}
	malformed := offer("O1", "A1", 1, 128)
	malformed.Resources[0].Scalar.Value = -1
	waiting := func(d time.Duration) State {
		return State{Agents: map[string]Agent{"A1": {Failures: 3, NotBefore: t0.Add(d)}}}
	}

	for _, tc := range []struct {
		name   string
		state  State
		tasks  taskTable
		offers []mesos.Offer
		want   []string
		check  func(*testing.T, State)
	}{{
		name:   "launches on a free agent and records it",
		offers: []mesos.Offer{offer("O1", "A1", 1, 128)},
		want:   []string{"launch web-000000 on A1 with O1"},
		check: func(t *testing.T, s State) {
			want := State{NextTask: 1, Agents: map[string]Agent{"A1": {Hostname: "a1.example", LastOffer: t0}}}
			if !reflect.DeepEqual(s, want) {
				t.Fatalf("state %+v, want %+v", s, want)
			}
		},
	}, {
		name:   "ids follow the sequence and increase",
		state:  State{NextTask: 41},
		offers: []mesos.Offer{offer("O1", "A1", 1, 128), offer("O2", "A2", 1, 128), offer("O3", "A3", 1, 128)},
		want:   []string{"launch web-000041 on A1 with O1", "launch web-000042 on A2 with O2", "launch web-000043 on A3 with O3"},
		check:  nextTask(44),
	}, {
		name:   "at most one launch per agent and event",
		offers: []mesos.Offer{offer("O1", "A1", 1, 128), offer("O2", "A1", 1, 128)},
		want:   []string{"launch web-000000 on A1 with O1", "decline O2 for 5m0s"},
		check:  nextTask(1),
	}, {
		name:   "a small offer is passed over for a later one of the same agent",
		offers: []mesos.Offer{offer("O1", "A1", 0.01, 128), offer("O2", "A1", 1, 128)},
		want:   []string{"launch web-000000 on A1 with O2", "decline O1 for 5m0s"},
	}, {
		name:   "a terminal task does not hold the slot",
		tasks:  tasks("web-000007@A1:TASK_FINISHED"),
		state:  State{NextTask: 8},
		offers: []mesos.Offer{offer("O1", "A1", 1, 128)},
		want:   []string{"launch web-000008 on A1 with O1"},
	}, {
		name:   "a task known by its data only holds the slot",
		tasks:  taskTable{"web-000001": {ID: "web-000001", State: mesos.TASK_RUNNING, Data: []byte("A1")}},
		offers: []mesos.Offer{offer("O1", "A1", 1, 128)},
		want:   []string{"decline O1 for 5m0s"},
		check:  nextTask(0),
	}, {
		name:   "a blacklisted agent gets nothing",
		state:  State{Agents: map[string]Agent{"A1": {Blacklisted: true}}},
		offers: []mesos.Offer{offer("O1", "A1", 1, 128)},
		want:   []string{"decline O1 for 5m0s"},
		check:  nextTask(0),
	}, {
		name:   "an agent in backoff is asked again when it ends",
		state:  waiting(10 * time.Second),
		offers: []mesos.Offer{offer("O1", "A1", 1, 128)},
		want:   []string{"decline O1 for 10s"},
	}, {
		name:   "a backoff ending within a second declines for one",
		state:  waiting(300 * time.Millisecond),
		offers: []mesos.Offer{offer("O1", "A1", 1, 128)},
		want:   []string{"decline O1 for 1s"},
	}, {
		name:   "the backoff ends at NotBefore",
		state:  waiting(0),
		offers: []mesos.Offer{offer("O1", "A1", 1, 128)},
		want:   []string{"launch web-000000 on A1 with O1"},
		check: func(t *testing.T, s State) {
			if a := s.Agents["A1"]; a.Failures != 3 {
				t.Fatalf("failures %d, want 3 (only a long run resets them)", a.Failures)
			}
		},
	}, {
		name:   "too few cpus",
		offers: []mesos.Offer{offer("O1", "A1", 0.09, 128)},
		want:   []string{"decline O1 for 5m0s"},
	}, {
		name:   "too little mem",
		offers: []mesos.Offer{offer("O1", "A1", 1, 31.9)},
		want:   []string{"decline O1 for 5m0s"},
	}, {
		name:   "exactly enough",
		offers: []mesos.Offer{offer("O1", "A1", 0.1, 32)},
		want:   []string{"launch web-000000 on A1 with O1"},
	}, {
		name:   "entries of one name are summed",
		offers: []mesos.Offer{split},
		want:   []string{"launch web-000000 on A1 with O1"},
	}, {
		name:   "resources of another role are not ours",
		offers: []mesos.Offer{otherRole},
		want:   []string{"decline O1 for 5m0s"},
	}, {
		name:   "reserved resources cannot hold an unreserved task",
		offers: []mesos.Offer{reserved},
		want:   []string{"decline O1 for 5m0s"},
	}, {
		name:   "an offer without allocation info (older masters)",
		offers: []mesos.Offer{legacy},
		want:   []string{"launch web-000000 on A1 with O1"},
	}, {
		name:   "a malformed offer fits nothing",
		offers: []mesos.Offer{malformed},
		want:   []string{"decline O1 for 5m0s"},
	}, {
		name:   "an offer naming no usable agent is declined and not recorded",
		offers: []mesos.Offer{offer("O1", "", 1, 128), offer("O2", "bad/agent", 1, 128)},
		want:   []string{"decline O1,O2 for 5m0s"},
		check: func(t *testing.T, s State) {
			if len(s.Agents) != 0 {
				t.Fatalf("agents %v", s.Agents)
			}
		},
	}, {
		name:   "an offer without id is ignored",
		offers: []mesos.Offer{offer("", "A1", 1, 128)},
		want:   nil,
	}, {
		name:   "an offer brings a gone agent back",
		state:  State{Agents: map[string]Agent{"A1": {Hostname: "old", Gone: true}}},
		offers: []mesos.Offer{offer("O1", "A1", 1, 128)},
		want:   []string{"launch web-000000 on A1 with O1"},
		check: func(t *testing.T, s State) {
			if a := s.Agents["A1"]; a.Gone || a.Hostname != "a1.example" || !a.LastOffer.Equal(t0) {
				t.Fatalf("agent %+v", a)
			}
		},
	}, {
		name:   "an id in use is skipped",
		tasks:  tasks("web-000000@A2:TASK_RUNNING", "web-000001@A3:TASK_RUNNING"),
		offers: []mesos.Offer{offer("O1", "A1", 1, 128)},
		want:   []string{"launch web-000002 on A1 with O1"},
		check:  nextTask(3),
	}, {
		name: "declines are grouped by filter",
		state: State{NextTask: 5, Agents: map[string]Agent{
			"A2": {Blacklisted: true}, "A3": {NotBefore: t0.Add(3 * time.Second)}}},
		tasks: tasks("web-000001@A1:TASK_RUNNING", "web-000004@A5:TASK_STAGING"),
		offers: []mesos.Offer{offer("O1", "A1", 1, 128), offer("O2", "A2", 1, 128), offer("O3", "A3", 1, 128),
			offer("O4", "A4", 1, 128), offer("O5", "A5", 1, 128)},
		want: []string{"launch web-000005 on A4 with O4", "decline O1,O2,O5 for 5m0s", "decline O3 for 3s"},
		check: func(t *testing.T, s State) {
			if len(s.Agents) != 5 || s.NextTask != 6 {
				t.Fatalf("state %+v", s)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			f := testFramework(t)
			s, acts := f.Handle(tc.state, core.Input{Event: offersEv(tc.offers...), Now: t0, Tasks: tc.tasks})
			checkActions(t, acts, tc.want...)
			if tc.check != nil {
				tc.check(t, s)
			}
		})
	}
}

func nextTask(n uint64) func(*testing.T, State) {
	return func(t *testing.T, s State) {
		t.Helper()
		if s.NextTask != n {
			t.Fatalf("NextTask %d, want %d", s.NextTask, n)
		}
	}
}

// Every state but the terminal ones holds an agent's slot: never two tasks
// on one agent.
func TestNonTerminalTaskHoldsTheSlot(t *testing.T) {
	f := testFramework(t)
	for _, st := range []mesos.TaskState{mesos.TASK_STAGING, mesos.TASK_STARTING, mesos.TASK_RUNNING,
		mesos.TASK_KILLING, mesos.TASK_UNREACHABLE, mesos.TASK_UNKNOWN, mesos.TaskState(99)} {
		t.Run(st.String(), func(t *testing.T) {
			tt := taskTable{"web-000003": {ID: "web-000003", AgentID: "A1", State: st}}
			s, acts := f.Handle(State{NextTask: 4}, core.Input{Event: offersEv(offer("O1", "A1", 8, 8192)), Now: t0, Tasks: tt})
			checkActions(t, acts, "decline O1 for 5m0s")
			if s.NextTask != 4 {
				t.Fatalf("NextTask %d", s.NextTask)
			}
		})
	}
	for _, st := range []mesos.TaskState{mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_ERROR,
		mesos.TASK_LOST, mesos.TASK_DROPPED, mesos.TASK_GONE, mesos.TASK_GONE_BY_OPERATOR} {
		t.Run(st.String(), func(t *testing.T) {
			tt := taskTable{"web-000003": {ID: "web-000003", AgentID: "A1", State: st}}
			_, acts := f.Handle(State{NextTask: 4}, core.Input{Event: offersEv(offer("O1", "A1", 8, 8192)), Now: t0, Tasks: tt})
			checkActions(t, acts, "launch web-000004 on A1 with O1")
		})
	}
}

func TestLaunchIsComplete(t *testing.T) {
	f := mustNew(t, Config{Name: "web", CPUs: 0.5, Mem: 64, Command: "./serve --port 80"})
	_, acts := f.Handle(State{NextTask: 12}, core.Input{Event: offersEv(offer("O1", "A1", 1, 128)), Now: t0})
	if len(acts) != 1 {
		t.Fatalf("actions %q", describe(acts))
	}
	got := acts[0].(core.Launch)
	cmd, shell := "./serve --port 80", true
	want := core.Launch{
		OfferIDs: []string{"O1"},
		Tasks: []mesos.TaskInfo{{
			Name: "web-000012", TaskID: mesos.TaskID{Value: "web-000012"}, AgentID: mesos.AgentID{Value: "A1"},
			Command:   &mesos.CommandInfo{Value: &cmd, Shell: &shell},
			Resources: []mesos.Resource{res("cpus", 0.5, "*"), res("mem", 64, "*")},
		}},
		Data:    map[string][]byte{"web-000012": []byte("A1")},
		Filters: refuse(5 * time.Minute),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("launch\n got  %+v\n want %+v", got, want)
	}
	// The task's resources are exactly what the offer must contain.
	if ok, err := core.Fits(got.Tasks[0].Resources, offer("O1", "A1", 0.5, 64)); !ok || err != nil {
		t.Fatalf("task does not fit an offer of its size: %v %v", ok, err)
	}
}

func TestLaunchCarriesTheOffersAllocationRole(t *testing.T) {
	f := mustNew(t, Config{Name: "web", Role: "prod/web"})
	o := offer("O1", "A1", 1, 128)
	o.AllocationInfo.Role = str("prod/web")
	for i := range o.Resources {
		o.Resources[i].AllocationInfo.Role = str("prod/web")
	}
	_, acts := f.Handle(State{}, core.Input{Event: offersEv(o), Now: t0})
	checkActions(t, acts, "launch web-000000 on A1 with O1")
	for _, r := range acts[0].(core.Launch).Tasks[0].Resources {
		if r.AllocationInfo == nil || r.AllocationInfo.GetRole() != "prod/web" || core.Reserved(r) {
			t.Fatalf("resource %v: want unreserved, allocated to prod/web", r)
		}
	}
	// Without allocation info (an older master, or no MULTI_ROLE) the
	// task's resources carry none either.
	legacy := offer("O2", "A2", 1, 128)
	legacy.AllocationInfo = nil
	for i := range legacy.Resources {
		legacy.Resources[i].AllocationInfo = nil
	}
	f = testFramework(t)
	_, acts = f.Handle(State{}, core.Input{Event: offersEv(legacy), Now: t0})
	checkActions(t, acts, "launch web-000000 on A2 with O2")
	for _, r := range acts[0].(core.Launch).Tasks[0].Resources {
		if r.AllocationInfo != nil {
			t.Fatalf("resource %v carries allocation info the offer did not have", r)
		}
	}
}
