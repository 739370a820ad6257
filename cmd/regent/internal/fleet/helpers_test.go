package fleet

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/regent-sched/regent/core"
)

// t0 is the time of most hand-built inputs.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// taskTable is a core.TaskView over a map, as core's own is.
type taskTable map[string]core.Task

func (t taskTable) Get(id string) (core.Task, bool) { v, ok := t[id]; return v, ok }
func (t taskTable) Len() int                        { return len(t) }
func (t taskTable) Range(f func(core.Task) bool) {
	for _, v := range t {
		if !f(v) {
			return
		}
	}
}

// tasks builds a task table; each task is "id@agent:STATE".
func tasks(specs ...string) taskTable {
	tt := taskTable{}
	for _, s := range specs {
		id, rest, _ := strings.Cut(s, "@")
		agent, state, _ := strings.Cut(rest, ":")
		st, ok := mesos.TaskState_value[state]
		if !ok {
			panic("bad state " + state)
		}
		tt[id] = core.Task{ID: id, Name: id, AgentID: agent, State: mesos.TaskState(st),
			Launched: t0.Add(-time.Hour), Updated: t0.Add(-time.Hour), Data: []byte(agent)}
	}
	return tt
}

func mustNew(t *testing.T, cfg Config) *Framework {
	t.Helper()
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// testFramework is the framework of the table tests: defaults (backoff 1 s
// to 60 s, reset after 60 s, declines for 5 min).
func testFramework(t *testing.T) *Framework { return mustNew(t, Config{Name: "web"}) }

func str(s string) *string { return &s }

// res builds a scalar resource allocated to role, as mesos-sim and a real
// master (since 1.2) offer them; role "" leaves allocation_info out.
func res(name string, v float64, role string) mesos.Resource {
	r := core.Scalar(name, v)
	if role != "" {
		r.AllocationInfo = &mesos.Resource_AllocationInfo{Role: str(role)}
	}
	return r
}

// offer is an offer of agent's unreserved cpus and mem to the role "*",
// shaped like mesos-sim's.
func offer(id, agent string, cpus, mem float64) mesos.Offer {
	return mesos.Offer{
		ID: mesos.OfferID{Value: id}, AgentID: mesos.AgentID{Value: agent}, Hostname: strings.ToLower(agent) + ".example",
		FrameworkID:    mesos.FrameworkID{Value: "fw"},
		AllocationInfo: &mesos.Resource_AllocationInfo{Role: str("*")},
		Resources:      []mesos.Resource{res("cpus", cpus, "*"), res("mem", mem, "*"), res("disk", 1000, "*")},
	}
}

func offersEv(os ...mesos.Offer) core.OffersReceived { return core.OffersReceived{Offers: os} }

// update is a status update of task, whose previous record is prev.
func update(prev core.Task, state mesos.TaskState) core.TaskUpdate {
	st := mesos.TaskStatus{TaskID: mesos.TaskID{Value: prev.ID}, State: state.Enum(), UUID: []byte("0123456789abcdef")}
	if prev.AgentID != "" {
		st.AgentID = &mesos.AgentID{Value: prev.AgentID}
	}
	return core.TaskUpdate{Status: st, Previous: prev}
}

// running is a task record that has been RUNNING since `since` before t0.
func running(id, agent string, since time.Duration) core.Task {
	return core.Task{ID: id, AgentID: agent, State: mesos.TASK_RUNNING, Launched: t0.Add(-since - time.Second),
		Updated: t0.Add(-since), Data: []byte(agent)}
}

func ask(id uint64, payload any) core.UserMessage {
	return core.UserMessage{ID: id, Payload: payload, Request: true}
}

// describe renders actions compactly for table tests.
func describe(acts []core.Action) []string {
	var out []string
	for _, a := range acts {
		switch a := a.(type) {
		case core.Launch:
			var ids, agents []string
			for _, ti := range a.Tasks {
				ids = append(ids, ti.TaskID.Value)
				agents = append(agents, ti.AgentID.Value)
			}
			out = append(out, fmt.Sprintf("launch %s on %s with %s", strings.Join(ids, ","), strings.Join(agents, ","), strings.Join(a.OfferIDs, ",")))
		case core.Decline:
			out = append(out, fmt.Sprintf("decline %s for %v", strings.Join(a.OfferIDs, ","), refuseOf(a.Filters)))
		case core.Kill:
			out = append(out, "kill "+a.TaskID)
		case core.Forget:
			out = append(out, "forget "+a.TaskID)
		case core.Revive:
			out = append(out, "revive")
		case core.Reply:
			if a.Err != nil {
				out = append(out, fmt.Sprintf("reply %d error", a.To))
			} else {
				out = append(out, fmt.Sprintf("reply %d", a.To))
			}
		default:
			out = append(out, fmt.Sprintf("%T", a))
		}
	}
	return out
}

func refuseOf(f *mesos.Filters) time.Duration {
	if f == nil || f.RefuseSeconds == nil {
		return -1
	}
	return time.Duration(*f.RefuseSeconds * float64(time.Second))
}

func checkActions(t *testing.T, got []core.Action, want ...string) {
	t.Helper()
	if d := describe(got); !reflect.DeepEqual(d, want) && !(len(d) == 0 && len(want) == 0) {
		t.Fatalf("actions\n got  %q\n want %q", d, want)
	}
}

// replyOf returns the only Reply among acts.
func replyOf(t *testing.T, acts []core.Action) core.Reply {
	t.Helper()
	var out []core.Reply
	for _, a := range acts {
		if r, ok := a.(core.Reply); ok {
			out = append(out, r)
		}
	}
	if len(out) != 1 {
		t.Fatalf("%d replies in %q", len(out), describe(acts))
	}
	return out[0]
}

// clone deep-copies a state, for tests that compare before and after
// (Handle updates the Agents map in place).
func clone(s State) State {
	c := State{NextTask: s.NextTask}
	if s.Agents != nil {
		c.Agents = make(map[string]Agent, len(s.Agents))
		for id, a := range s.Agents {
			if a.LastExit != nil {
				e := *a.LastExit
				a.LastExit = &e
			}
			c.Agents[id] = a
		}
	}
	return c
}
