package core

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"go.uber.org/zap"

	"github.com/regent-sched/regent/persist"
)

// stateEntry is the persist entry holding the framework's own state.
const stateEntry = "state"

// effect is something to do once the state it depends on is committed: a
// Mesos call, or the answer to a caller of Ask.
type effect struct {
	call  *scheduler.Call
	reply *Reply
}

// machine is the deterministic heart of the scheduler: it owns the state,
// turns each event into a new state and a list of effects, and tracks what
// changed since the last commit. It does no I/O and reads no clock; the
// loop around it does both. Only the loop's goroutine touches it.
type machine[S any] struct {
	fw    Framework[S]
	codec Codec[S]
	opts  machineOptions
	log   *zap.Logger

	frameworkID string
	tasks       taskTable
	user        S

	// changes since the last batch
	dirtyTasks   map[string]struct{}
	deletedTasks map[string]struct{}
	dirtyID      bool
	userTouched  bool
	lastUserEnc  []byte
	effects      []effect

	rec       reconciliation
	suppress  bool                // the framework asked for SUPPRESS
	offers    map[string]struct{} // outstanding offer ids
	overdue   map[string]time.Time
	counters  Counters
	lastRecon time.Time
}

// machineOptions are the parts of Config the machine needs.
type machineOptions struct {
	defaultFilters    *mesos.Filters
	reconcileFilters  *mesos.Filters
	reconcileMin      time.Duration
	reconcileMax      time.Duration
	reconcileInterval time.Duration
	stagingTimeout    time.Duration
	reconcileBatch    int
}

// Counters count what the scheduler did, for metrics and tests.
type Counters struct {
	Events           uint64 `json:"events"`
	Updates          uint64 `json:"updates"`
	Acks             uint64 `json:"acks"`
	Launches         uint64 `json:"launches"`
	TasksLaunched    uint64 `json:"tasks_launched"`
	DuplicateLaunch  uint64 `json:"duplicate_launches_refused"`
	Kills            uint64 `json:"kills"`
	OrphansKilled    uint64 `json:"orphans_killed"`
	OrphansAdopted   uint64 `json:"orphans_adopted"`
	OffersReceived   uint64 `json:"offers_received"`
	OffersDeclined   uint64 `json:"offers_declined"`
	StaleUpdates     uint64 `json:"stale_updates_ignored"`
	Reconciliations  uint64 `json:"reconciliations"`
	ReconcileRounds  uint64 `json:"reconcile_rounds"`
	UnknownEvents    uint64 `json:"unknown_events"`
	UnknownTaskState uint64 `json:"unknown_task_states"`
}

// taskTable holds the task records. Values, not pointers: the framework
// sees copies through the TaskView.
type taskTable map[string]Task

func (t taskTable) Get(id string) (Task, bool) { v, ok := t[id]; return v, ok }
func (t taskTable) Len() int                   { return len(t) }
func (t taskTable) Range(f func(Task) bool) {
	for _, v := range t {
		if !f(v) {
			return
		}
	}
}

func newMachine[S any](fw Framework[S], codec Codec[S], opts machineOptions, log *zap.Logger) *machine[S] {
	return &machine[S]{
		fw: fw, codec: codec, opts: opts, log: log,
		tasks:        taskTable{},
		dirtyTasks:   map[string]struct{}{},
		deletedTasks: map[string]struct{}{},
		offers:       map[string]struct{}{},
		overdue:      map[string]time.Time{},
	}
}

// restore loads a committed snapshot. Every record must decode: a record
// this binary cannot read stops the replica from leading.
func (m *machine[S]) restore(snap *persist.Snapshot) error {
	m.frameworkID = snap.FrameworkID
	for id, b := range snap.Tasks {
		var t Task
		if err := json.Unmarshal(b, &t); err != nil {
			return fmt.Errorf("decode task %q: %w", id, err)
		}
		if t.ID != id {
			return fmt.Errorf("task record %q names task %q", id, t.ID)
		}
		m.tasks[id] = t
	}
	if b, ok := snap.Entries[stateEntry]; ok {
		s, err := m.codec.Decode(b)
		if err != nil {
			return fmt.Errorf("decode framework state: %w", err)
		}
		m.user = s
		m.lastUserEnc = b
	}
	return nil
}

func (m *machine[S]) input(now time.Time, ev Event) Input {
	return Input{Event: ev, Now: now, Tasks: m.tasks, FrameworkID: m.frameworkID}
}

// handle runs one event through regent's own bookkeeping and the
// framework, and applies the actions.
func (m *machine[S]) handle(now time.Time, ev Event) {
	m.counters.Events++
	var acts []Action
	m.user, acts = m.fw.Handle(m.user, m.input(now, ev))
	m.userTouched = true
	m.apply(now, acts)
}

// apply turns actions into state changes and effects.
func (m *machine[S]) apply(now time.Time, acts []Action) {
	for _, a := range acts {
		switch a := a.(type) {
		case Launch:
			m.launch(now, a)
		case Kill:
			if t, ok := m.tasks[a.TaskID]; ok {
				m.kill(t.ID, t.AgentID)
			}
		case Forget:
			if t, ok := m.tasks[a.TaskID]; ok {
				m.deleteTask(t.ID)
				if !t.Terminal() {
					m.kill(t.ID, t.AgentID)
				}
			}
		case Adopt:
			m.adopt(now, a)
		case Decline:
			m.decline(a.OfferIDs, a.Filters)
		case Suppress:
			m.suppress = true
			m.emit(&scheduler.Call{Type: scheduler.Call_SUPPRESS})
		case Revive:
			m.suppress = false
			m.emit(&scheduler.Call{Type: scheduler.Call_REVIVE})
		case Reconcile:
			m.reconcileNow(a.TaskIDs)
		case SendMessage:
			m.emit(&scheduler.Call{Type: scheduler.Call_MESSAGE, Message: &scheduler.Call_Message{
				AgentID: mesos.AgentID{Value: a.AgentID}, ExecutorID: mesos.ExecutorID{Value: a.ExecutorID}, Data: a.Data}})
		case Reply:
			r := a
			m.effects = append(m.effects, effect{reply: &r})
		default:
			m.log.Warn("unknown action ignored", zap.String("type", fmt.Sprintf("%T", a)))
		}
	}
}

func (m *machine[S]) emit(c *scheduler.Call) { m.effects = append(m.effects, effect{call: c}) }

func (m *machine[S]) putTask(t Task) {
	m.tasks[t.ID] = t
	m.dirtyTasks[t.ID] = struct{}{}
	delete(m.deletedTasks, t.ID)
}

func (m *machine[S]) deleteTask(id string) {
	delete(m.tasks, id)
	delete(m.dirtyTasks, id)
	delete(m.overdue, id)
	m.deletedTasks[id] = struct{}{}
	m.rec.forget(id)
}

func (m *machine[S]) kill(taskID, agentID string) {
	m.counters.Kills++
	k := &scheduler.Call_Kill{TaskID: mesos.TaskID{Value: taskID}}
	if agentID != "" {
		k.AgentID = &mesos.AgentID{Value: agentID}
	}
	m.emit(&scheduler.Call{Type: scheduler.Call_KILL, Kill: k})
}

func (m *machine[S]) launch(now time.Time, l Launch) {
	if len(l.OfferIDs) == 0 {
		m.log.Error("launch without offers ignored")
		return
	}
	var tasks []mesos.TaskInfo
	for _, ti := range l.Tasks {
		if _, dup := m.tasks[ti.TaskID.Value]; dup {
			// Never two tasks with one id: Mesos would refuse it anyway, and
			// the record of the running one must not be overwritten.
			m.counters.DuplicateLaunch++
			m.log.Error("launch of a task id already in the state refused", zap.String("task_id", ti.TaskID.Value))
			continue
		}
		m.putTask(Task{ID: ti.TaskID.Value, Name: ti.Name, AgentID: ti.AgentID.Value,
			State: mesos.TASK_STAGING, Launched: now, Updated: now, Data: l.Data[ti.TaskID.Value]})
		m.overdue[ti.TaskID.Value] = now
		tasks = append(tasks, ti)
	}
	ids := make([]mesos.OfferID, len(l.OfferIDs))
	for i, id := range l.OfferIDs {
		ids[i] = mesos.OfferID{Value: id}
		delete(m.offers, id)
	}
	filters := l.Filters
	if filters == nil {
		filters = m.opts.defaultFilters
	}
	accept := &scheduler.Call_Accept{OfferIDs: ids, Filters: filters}
	switch {
	case len(tasks) == 0:
		// Nothing left to launch: an ACCEPT with no operations declines.
	case l.Executor != nil:
		accept.Operations = []mesos.Offer_Operation{{Type: mesos.Offer_Operation_LAUNCH_GROUP,
			LaunchGroup: &mesos.Offer_Operation_LaunchGroup{Executor: *l.Executor, TaskGroup: mesos.TaskGroupInfo{Tasks: tasks}}}}
	default:
		accept.Operations = []mesos.Offer_Operation{{Type: mesos.Offer_Operation_LAUNCH,
			Launch: &mesos.Offer_Operation_Launch{TaskInfos: tasks}}}
	}
	m.counters.Launches++
	m.counters.TasksLaunched += uint64(len(tasks))
	m.emit(&scheduler.Call{Type: scheduler.Call_ACCEPT, Accept: accept})
}

func (m *machine[S]) adopt(now time.Time, a Adopt) {
	st := a.Status
	if _, known := m.tasks[st.TaskID.Value]; known {
		return
	}
	m.counters.OrphansAdopted++
	t := Task{ID: st.TaskID.Value, State: st.GetState(), Launched: now, Updated: now, Data: a.Data,
		Reason: int32(st.GetReason()), Message: st.GetMessage()}
	if st.AgentID != nil {
		t.AgentID = st.AgentID.Value
	}
	m.putTask(t)
}

func (m *machine[S]) decline(offerIDs []string, filters *mesos.Filters) {
	if len(offerIDs) == 0 {
		return
	}
	if filters == nil {
		filters = m.opts.defaultFilters
	}
	ids := make([]mesos.OfferID, len(offerIDs))
	for i, id := range offerIDs {
		ids[i] = mesos.OfferID{Value: id}
		delete(m.offers, id)
	}
	m.counters.OffersDeclined += uint64(len(ids))
	m.emit(&scheduler.Call{Type: scheduler.Call_DECLINE, Decline: &scheduler.Call_Decline{OfferIDs: ids, Filters: filters}})
}

// ack acknowledges an update that carries a uuid; it runs after the commit
// that holds the update's effect on the state.
func (m *machine[S]) ack(st *mesos.TaskStatus) {
	if len(st.UUID) == 0 || st.AgentID == nil {
		return
	}
	m.counters.Acks++
	m.emit(&scheduler.Call{Type: scheduler.Call_ACKNOWLEDGE, Acknowledge: &scheduler.Call_Acknowledge{
		AgentID: *st.AgentID, TaskID: st.TaskID, UUID: st.UUID}})
}

// mesosEvent handles one event from the master.
func (m *machine[S]) mesosEvent(now time.Time, ev *scheduler.Event) {
	switch ev.Type {
	case scheduler.Event_SUBSCRIBED:
		m.subscribed(now, ev.Subscribed)
	case scheduler.Event_OFFERS:
		m.offersReceived(now, ev.Offers.GetOffers())
	case scheduler.Event_RESCIND:
		if ev.Rescind != nil {
			delete(m.offers, ev.Rescind.OfferID.Value)
			m.handle(now, OfferRescinded{OfferID: ev.Rescind.OfferID.Value})
		}
	case scheduler.Event_UPDATE:
		if ev.Update != nil {
			m.update(now, &ev.Update.Status)
		}
	case scheduler.Event_FAILURE:
		f := ev.Failure
		if f == nil {
			return
		}
		if f.ExecutorID != nil {
			el := ExecutorLost{ExecutorID: f.ExecutorID.Value, Status: f.Status}
			if f.AgentID != nil {
				el.AgentID = f.AgentID.Value
			}
			m.handle(now, el)
		} else if f.AgentID != nil {
			m.handle(now, AgentLost{AgentID: f.AgentID.Value})
		}
	case scheduler.Event_MESSAGE:
		if msg := ev.Message; msg != nil {
			m.handle(now, FrameworkMessage{AgentID: msg.AgentID.Value, ExecutorID: msg.ExecutorID.Value, Data: msg.Data})
		}
	case scheduler.Event_ERROR:
		m.handle(now, MesosError{Message: ev.GetError().GetMessage()})
	case scheduler.Event_HEARTBEAT:
		// liveness only; the connection's watchdog saw it
	default:
		// INVERSE_OFFERS, UPDATE_OPERATION_STATUS and types newer than this
		// code: counted, never fatal.
		m.counters.UnknownEvents++
	}
}

func (m *machine[S]) subscribed(now time.Time, s *scheduler.Event_Subscribed) {
	if s == nil || s.FrameworkID == nil {
		return
	}
	id := s.FrameworkID.Value
	re := m.frameworkID != ""
	if m.frameworkID != id {
		if re {
			// The master gave another id than the one we subscribed with:
			// never silently switch frameworks.
			m.log.Error("master assigned a different FrameworkID", zap.String("stored", m.frameworkID), zap.String("got", id))
		}
		m.frameworkID = id
		m.dirtyID = true
	}
	// Offers of an earlier subscription are gone with it.
	clear(m.offers)
	var mi mesos.MasterInfo
	if s.MasterInfo != nil {
		mi = *s.MasterInfo
	}
	m.handle(now, Subscribed{FrameworkID: id, Master: mi, Resubscribed: re})
	m.startReconciliation(now, true)
}

func (m *machine[S]) offersReceived(now time.Time, offers []mesos.Offer) {
	m.counters.OffersReceived += uint64(len(offers))
	if m.rec.holdOffers {
		ids := make([]string, len(offers))
		for i, o := range offers {
			ids[i] = o.ID.Value
		}
		m.decline(ids, m.opts.reconcileFilters)
		return
	}
	for _, o := range offers {
		m.offers[o.ID.Value] = struct{}{}
	}
	m.handle(now, OffersReceived{Offers: offers})
	// What the framework neither used nor declined is declined now.
	var left []string
	for _, o := range offers {
		if _, still := m.offers[o.ID.Value]; still {
			left = append(left, o.ID.Value)
		}
	}
	m.decline(left, nil)
}

func knownState(s mesos.TaskState) bool {
	_, ok := mesos.TaskState_name[int32(s)]
	return ok
}

func (m *machine[S]) update(now time.Time, st *mesos.TaskStatus) {
	m.counters.Updates++
	id := st.TaskID.Value
	m.rec.answered(id)
	prev, known := m.tasks[id]
	if !knownState(st.GetState()) {
		m.counters.UnknownTaskState++
	}
	if !known {
		if !IsTerminal(st.GetState()) {
			m.orphan(now, st)
		}
		m.ack(st)
		m.afterUpdate(now)
		return
	}
	next := prev
	if prev.Terminal() && !IsTerminal(st.GetState()) {
		// A late update (a resend, or a reconciliation answer that crossed
		// the terminal one) must not revive a finished task.
		m.counters.StaleUpdates++
	} else {
		next.State = st.GetState()
		next.Reason = int32(st.GetReason())
		next.Message = st.GetMessage()
		next.Updated = now
		if st.AgentID != nil && st.AgentID.Value != "" {
			next.AgentID = st.AgentID.Value
		}
		if next.State != mesos.TASK_STAGING {
			delete(m.overdue, id)
		}
		m.putTask(next)
	}
	m.handle(now, TaskUpdate{Status: *st, Previous: prev})
	// A terminal task leaves the state once the framework has seen it
	// (unless its Handle forgot it already).
	if cur, ok := m.tasks[id]; ok && cur.Terminal() {
		m.deleteTask(id)
	}
	m.ack(st)
	m.afterUpdate(now)
}

func (m *machine[S]) orphan(now time.Time, st *mesos.TaskStatus) {
	m.handle(now, Orphan{Status: *st})
	if _, adopted := m.tasks[st.TaskID.Value]; adopted {
		return
	}
	m.counters.OrphansKilled++
	agent := ""
	if st.AgentID != nil {
		agent = st.AgentID.Value
	}
	m.log.Info("killing orphan task", zap.String("task_id", st.TaskID.Value), zap.String("agent_id", agent))
	m.kill(st.TaskID.Value, agent)
}

// tick runs time-driven work: the framework's Tick, reconciliation
// retries, periodic reconciliation and overdue launches.
func (m *machine[S]) tick(now time.Time) {
	m.handle(now, Tick{})
	m.reconcileTick(now)
	if m.opts.stagingTimeout > 0 && len(m.overdue) > 0 && !m.rec.active {
		var late []string
		for id, since := range m.overdue {
			if now.Sub(since) >= m.opts.stagingTimeout {
				late = append(late, id)
				m.overdue[id] = now // ask again only after another timeout
			}
		}
		if len(late) > 0 {
			sort.Strings(late)
			m.reconcileNow(late)
		}
	}
}

// pending reports whether anything awaits a commit.
func (m *machine[S]) pending() bool {
	return len(m.dirtyTasks) > 0 || len(m.deletedTasks) > 0 || m.dirtyID || m.userTouched || len(m.effects) > 0
}

// takeBatch returns the changes since the last call as one persist.Batch,
// with the effects that must wait for it.
func (m *machine[S]) takeBatch() (persist.Batch, []effect, error) {
	var b persist.Batch
	if m.dirtyID {
		id := m.frameworkID
		b.FrameworkID = &id
		m.dirtyID = false
	}
	if len(m.dirtyTasks) > 0 {
		b.PutTasks = make(map[string][]byte, len(m.dirtyTasks))
		for id := range m.dirtyTasks {
			enc, err := json.Marshal(m.tasks[id])
			if err != nil {
				return b, nil, fmt.Errorf("encode task %q: %w", id, err)
			}
			b.PutTasks[id] = enc
		}
		clear(m.dirtyTasks)
	}
	for id := range m.deletedTasks {
		b.DeleteTasks = append(b.DeleteTasks, id)
	}
	clear(m.deletedTasks)
	if m.userTouched {
		enc, err := m.codec.Encode(m.user)
		if err != nil {
			return b, nil, fmt.Errorf("encode framework state: %w", err)
		}
		if !bytes.Equal(enc, m.lastUserEnc) {
			b.PutEntries = map[string][]byte{stateEntry: enc}
			m.lastUserEnc = enc
		}
		m.userTouched = false
	}
	effs := m.effects
	m.effects = nil
	return b, effs, nil
}
