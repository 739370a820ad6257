package fleet

import (
	"fmt"
	"sort"
	"time"
	"unicode/utf8"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/regent-sched/regent/core"
)

// Handle implements core.Framework[State]. It ignores events it does not
// know, and never panics on any state or input.
func (f *Framework) Handle(s State, in core.Input) (State, []core.Action) {
	if s.Agents == nil {
		s.Agents = map[string]Agent{}
	}
	switch ev := in.Event.(type) {
	case core.OffersReceived:
		return f.offers(s, in, ev.Offers)
	case core.TaskUpdate:
		return f.update(s, in, ev)
	case core.AgentLost:
		return agentLost(s, in, ev.AgentID), nil
	case core.UserMessage:
		return f.request(s, in, ev)
	}
	// Orphan: core kills it unless Handle adopts it, and a task this
	// framework does not know has no slot to fill. Everything else
	// (Subscribed, Tick, rescinds, ...) needs nothing.
	return s, nil
}

// offers launches one task on every agent that needs one and declines
// every offer it does not use.
func (f *Framework) offers(s State, in core.Input, offers []mesos.Offer) (State, []core.Action) {
	busy := map[string]bool{}
	rangeTasks(in.Tasks, func(t core.Task) {
		if !t.Terminal() {
			busy[taskAgent(t)] = true
		}
	})
	var acts []core.Action
	var declines declineSet
	for _, o := range offers {
		if o.ID.Value == "" {
			continue // nothing to accept or decline
		}
		id := o.AgentID.Value
		if ValidAgentID(id) != nil {
			declines.add(o.ID.Value, f.cfg.DeclineRefuse)
			continue
		}
		a := s.Agents[id]
		if o.Hostname != "" {
			a.Hostname = o.Hostname
		}
		a.LastOffer = in.Now
		a.Gone = false
		s.Agents[id] = a
		switch {
		case a.Blacklisted || busy[id]:
			declines.add(o.ID.Value, f.cfg.DeclineRefuse)
		case in.Now.Before(a.NotBefore):
			// Ask again when the backoff ends (Mesos counts the filter in
			// seconds; less than one would only bring the offer back early).
			declines.add(o.ID.Value, max(time.Second, a.NotBefore.Sub(in.Now)))
		case !f.fits(o):
			declines.add(o.ID.Value, f.cfg.DeclineRefuse)
		default:
			var l core.Launch
			s, l = f.launch(s, in.Tasks, o)
			acts = append(acts, l)
			busy[id] = true // at most one launch per agent and event
		}
	}
	return s, append(acts, declines.actions()...)
}

// usable selects the offered resources a task may use: unreserved ones
// allocated to (or, without allocation info, offered for) the role. The
// task asks for unreserved resources, so reserved ones would not hold it.
func (f *Framework) usable(o mesos.Offer) []mesos.Resource {
	forRole := core.ForRole(f.cfg.Role)
	return core.Filter(o.Resources, func(r mesos.Resource) bool { return forRole(r) && core.Unreserved(r) })
}

// fits reports whether the offer's usable resources hold one task. A
// malformed offer holds nothing.
func (f *Framework) fits(o mesos.Offer) bool {
	have, err := core.ResourcesOf(f.usable(o))
	return err == nil && have.Contains(f.want)
}

// launch builds the Launch of the next task on o's agent and advances the
// task-id sequence.
func (f *Framework) launch(s State, tasks core.TaskView, o mesos.Offer) (State, core.Launch) {
	id := f.taskID(s.NextTask)
	s.NextTask++
	// The sequence is committed with every launch, so an id is never
	// reused; skip one in use anyway should the state have been reset.
	for taskKnown(tasks, id) {
		id = f.taskID(s.NextTask)
		s.NextTask++
	}
	cmd, shell := f.cfg.Command, true
	task := mesos.TaskInfo{
		Name:      id,
		TaskID:    mesos.TaskID{Value: id},
		AgentID:   o.AgentID,
		Command:   &mesos.CommandInfo{Value: &cmd, Shell: &shell},
		Resources: f.want.ToProto(f.allocationRole(o)),
	}
	return s, core.Launch{
		OfferIDs: []string{o.ID.Value},
		Tasks:    []mesos.TaskInfo{task},
		Data:     map[string][]byte{id: []byte(o.AgentID.Value)},
		// The rest of the offer: this agent needs nothing more until its
		// task ends, and then a Revive clears the filter.
		Filters: refuse(f.cfg.DeclineRefuse),
	}
}

func (f *Framework) taskID(seq uint64) string { return fmt.Sprintf("%s-%06d", f.cfg.Name, seq) }

// allocationRole is the role the offer was allocated to, which a task's
// resources must carry as allocation_info when the offer has it (MULTI_ROLE
// frameworks; masters add it to every offer since Mesos 1.2). "" when the
// offer has none.
func (f *Framework) allocationRole(o mesos.Offer) string {
	if o.AllocationInfo != nil && o.AllocationInfo.Role != nil {
		return *o.AllocationInfo.Role
	}
	for _, r := range f.usable(o) {
		if r.AllocationInfo != nil && r.AllocationInfo.Role != nil {
			return *r.AllocationInfo.Role
		}
	}
	return ""
}

// update records how a task ended and schedules its replacement.
func (f *Framework) update(s State, in core.Input, ev core.TaskUpdate) (State, []core.Action) {
	st := ev.Status.GetState()
	taskID := ev.Status.TaskID.Value
	agentID := ev.Previous.AgentID
	if ev.Status.AgentID != nil && ev.Status.AgentID.Value != "" {
		agentID = ev.Status.AgentID.Value
	}
	if agentID == "" {
		agentID = taskAgent(ev.Previous)
	}
	if !core.IsTerminal(st) {
		return progress(s, in, ev, agentID)
	}
	acts := []core.Action{core.Forget{TaskID: taskID}}
	if ValidAgentID(agentID) != nil || ev.Previous.Terminal() {
		// No agent to charge it to, or a repeat of an end already counted.
		return s, acts
	}
	a := s.Agents[agentID]
	a.LastExit = &Exit{TaskID: taskID, State: st.String(), Message: truncate(ev.Status.GetMessage(), maxMessage), At: in.Now}
	if ev.Status.Reason != nil {
		a.LastExit.Reason = ev.Status.Reason.String()
	}
	if !a.Blacklisted {
		if ran, ok := ranFor(a, ev.Previous, in.Now); ok && ran >= f.cfg.ResetAfter {
			a.Failures = 0
		}
		a.Failures++
		a.NotBefore = in.Now.Add(f.backoff(a.Failures))
		// The agent's offers were declined with a long filter while the
		// task ran: clear it so the relaunch waits only for the backoff.
		acts = append(acts, core.Revive{})
	}
	a.RunningSince = time.Time{}
	s.Agents[agentID] = a
	return s, acts
}

// progress handles a non-terminal update: it notes when a task starts
// running, and kills again a task that lives on a blacklisted agent (one
// that was unreachable when it was blacklisted comes back this way).
func progress(s State, in core.Input, ev core.TaskUpdate, agentID string) (State, []core.Action) {
	a, known := s.Agents[agentID]
	if !known || ValidAgentID(agentID) != nil {
		return s, nil
	}
	st := ev.Status.GetState()
	// A task that was unreachable and runs again keeps its start time.
	fresh := ev.Previous.State == mesos.TASK_STAGING || ev.Previous.State == mesos.TASK_STARTING
	if st == mesos.TASK_RUNNING && (fresh || a.RunningSince.IsZero()) {
		a.RunningSince = in.Now
		s.Agents[agentID] = a
	}
	if a.Blacklisted && st != mesos.TASK_KILLING {
		return s, []core.Action{core.Kill{TaskID: ev.Status.TaskID.Value}}
	}
	return s, nil
}

// ranFor reports how long the task that just ended had been RUNNING, and
// false if it was not running. Previous.Updated is when its latest status
// arrived; RunningSince, when it first ran (later reconciliation answers
// refresh Updated, not RunningSince).
func ranFor(a Agent, prev core.Task, now time.Time) (time.Duration, bool) {
	if prev.State != mesos.TASK_RUNNING {
		return 0, false
	}
	ran := now.Sub(prev.Updated)
	if !a.RunningSince.IsZero() {
		ran = max(ran, now.Sub(a.RunningSince))
	}
	return ran, true
}

// backoff is BackoffMin doubled for every failure after the first, capped
// at BackoffMax.
func (f *Framework) backoff(failures int) time.Duration {
	d := f.cfg.BackoffMin
	for i := 1; i < failures && d < f.cfg.BackoffMax; i++ {
		if d > f.cfg.BackoffMax/2 {
			return f.cfg.BackoffMax
		}
		d *= 2
	}
	return min(d, f.cfg.BackoffMax)
}

// agentLost marks a known agent gone; its tasks get their own updates.
func agentLost(s State, in core.Input, id string) State {
	if ValidAgentID(id) != nil {
		return s
	}
	a, known := s.Agents[id]
	if !known && len(tasksOn(in.Tasks, id, false)) == 0 {
		return s
	}
	a.Gone = true
	s.Agents[id] = a
	return s
}

// declineSet groups declined offers by their filter, so that agents that
// need nothing cost one DECLINE call per event, not one per offer.
type declineSet struct {
	order []time.Duration
	ids   map[time.Duration][]string
}

func (d *declineSet) add(offerID string, refuse time.Duration) {
	if d.ids == nil {
		d.ids = map[time.Duration][]string{}
	}
	if _, ok := d.ids[refuse]; !ok {
		d.order = append(d.order, refuse)
	}
	d.ids[refuse] = append(d.ids[refuse], offerID)
}

func (d *declineSet) actions() []core.Action {
	var acts []core.Action
	for _, r := range d.order {
		acts = append(acts, core.Decline{OfferIDs: d.ids[r], Filters: refuse(r)})
	}
	return acts
}

func refuse(d time.Duration) *mesos.Filters {
	secs := d.Seconds()
	return &mesos.Filters{RefuseSeconds: &secs}
}

// taskAgent is the agent of a task: its record's, else the one this
// framework stored in its data at launch.
func taskAgent(t core.Task) string {
	if t.AgentID != "" {
		return t.AgentID
	}
	if ValidAgentID(string(t.Data)) == nil {
		return string(t.Data)
	}
	return ""
}

// rangeTasks calls f for every task of tv, which may be nil.
func rangeTasks(tv core.TaskView, f func(core.Task)) {
	if tv == nil {
		return
	}
	tv.Range(func(t core.Task) bool { f(t); return true })
}

func taskKnown(tv core.TaskView, id string) bool {
	if tv == nil {
		return false
	}
	_, ok := tv.Get(id)
	return ok
}

// tasksOn returns the tasks on agent (only the non-terminal ones when live),
// sorted by id.
func tasksOn(tv core.TaskView, agent string, live bool) []core.Task {
	var out []core.Task
	rangeTasks(tv, func(t core.Task) {
		if taskAgent(t) == agent && !(live && t.Terminal()) {
			out = append(out, t)
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// truncate cuts s to at most n bytes, on a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
