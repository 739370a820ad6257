package core

import (
	"sort"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"go.uber.org/zap"
)

// reconciliation follows the algorithm of Mesos' reconciliation guide:
// explicit first, for every task the state holds non-terminal, re-sent with
// truncated exponential backoff for those that stay unanswered (a task
// leaves the pending set on any update for it); then one implicit
// reconciliation, whose answers reveal tasks the state forgot (orphans).
// One runs at a time; a new SUBSCRIBED restarts it.
type reconciliation struct {
	active     bool
	holdOffers bool // offers are declined until done (after a SUBSCRIBED)
	started    time.Time
	rounds     int
	pending    map[string]struct{}
	backoff    time.Duration
	due        time.Time

	// last completed run, for status
	lastDone     time.Time
	lastDuration time.Duration
	lastRounds   int
}

func (r *reconciliation) answered(id string) {
	if r.active {
		delete(r.pending, id)
	}
}

func (r *reconciliation) forget(id string) { delete(r.pending, id) }

// ReconcileStatus is the progress of reconciliation, for status and metrics.
type ReconcileStatus struct {
	Active       bool          `json:"active"`
	Started      time.Time     `json:"started,omitempty"`
	Rounds       int           `json:"rounds"`
	Pending      int           `json:"pending"`
	LastDone     time.Time     `json:"last_done,omitempty"`
	LastDuration time.Duration `json:"last_duration"`
	LastRounds   int           `json:"last_rounds"`
}

func (r *reconciliation) status() ReconcileStatus {
	return ReconcileStatus{Active: r.active, Started: r.started, Rounds: r.rounds, Pending: len(r.pending),
		LastDone: r.lastDone, LastDuration: r.lastDuration, LastRounds: r.lastRounds}
}

// startReconciliation begins a run; holdOffers declines offers meanwhile
// (after a SUBSCRIBED, when the state may be behind Mesos).
func (m *machine[S]) startReconciliation(now time.Time, holdOffers bool) {
	m.counters.Reconciliations++
	m.lastRecon = now
	m.rec = reconciliation{active: true, holdOffers: holdOffers, started: now, pending: map[string]struct{}{},
		backoff: m.opts.reconcileMin, lastDone: m.rec.lastDone, lastDuration: m.rec.lastDuration, lastRounds: m.rec.lastRounds}
	for id, t := range m.tasks {
		if !t.Terminal() {
			m.rec.pending[id] = struct{}{}
		}
	}
	m.log.Info("reconciliation started", zap.Int("tasks", len(m.rec.pending)))
	m.explicitRound(now)
}

func (m *machine[S]) explicitRound(now time.Time) {
	if len(m.rec.pending) == 0 {
		m.finishReconciliation(now)
		return
	}
	m.rec.rounds++
	m.counters.ReconcileRounds++
	ids := make([]string, 0, len(m.rec.pending))
	for id := range m.rec.pending {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	m.reconcileTasks(ids)
	m.rec.due = now.Add(m.rec.backoff)
	m.rec.backoff *= 2
	if m.rec.backoff > m.opts.reconcileMax {
		m.rec.backoff = m.opts.reconcileMax
	}
}

// reconcileTasks sends explicit RECONCILE calls, in batches.
func (m *machine[S]) reconcileTasks(ids []string) {
	batch := m.opts.reconcileBatch
	for len(ids) > 0 {
		n := min(len(ids), batch)
		tasks := make([]scheduler.Call_Reconcile_Task, 0, n)
		for _, id := range ids[:n] {
			rt := scheduler.Call_Reconcile_Task{TaskID: mesos.TaskID{Value: id}}
			if t, ok := m.tasks[id]; ok && t.AgentID != "" {
				rt.AgentID = &mesos.AgentID{Value: t.AgentID}
			}
			tasks = append(tasks, rt)
		}
		m.emit(&scheduler.Call{Type: scheduler.Call_RECONCILE, Reconcile: &scheduler.Call_Reconcile{Tasks: tasks}})
		ids = ids[n:]
	}
}

// reconcileNow asks about tasks outside a run (the Reconcile action, or
// overdue launches); no ids means every non-terminal task.
func (m *machine[S]) reconcileNow(ids []string) {
	if len(ids) == 0 {
		for id, t := range m.tasks {
			if !t.Terminal() {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
	}
	if len(ids) > 0 {
		m.reconcileTasks(ids)
	}
}

func (m *machine[S]) finishReconciliation(now time.Time) {
	// Implicit: the master reports every task it knows; the unknown ones
	// arrive as orphans.
	m.emit(&scheduler.Call{Type: scheduler.Call_RECONCILE, Reconcile: &scheduler.Call_Reconcile{}})
	held := m.rec.holdOffers
	m.rec.active = false
	m.rec.holdOffers = false
	m.rec.lastDone = now
	m.rec.lastDuration = now.Sub(m.rec.started)
	m.rec.lastRounds = m.rec.rounds
	m.log.Info("reconciliation done", zap.Int("rounds", m.rec.rounds), zap.Duration("duration", m.rec.lastDuration))
	if held && !m.suppress {
		// Offers declined meanwhile come back at once.
		m.emit(&scheduler.Call{Type: scheduler.Call_REVIVE})
	}
	m.handle(now, ReconciliationDone{Rounds: m.rec.rounds, Duration: m.rec.lastDuration})
}

// reconcileTick advances a run whose backoff expired, or starts a periodic
// one.
func (m *machine[S]) reconcileTick(now time.Time) {
	switch {
	case m.rec.active && len(m.rec.pending) == 0:
		m.finishReconciliation(now)
	case m.rec.active && !now.Before(m.rec.due):
		m.explicitRound(now)
	case !m.rec.active && m.frameworkID != "" && m.opts.reconcileInterval > 0 &&
		now.Sub(m.lastRecon) >= m.opts.reconcileInterval:
		m.startReconciliation(now, false)
	}
}

// afterUpdate finishes an explicit phase as soon as its last task answered,
// without waiting for the timer.
func (m *machine[S]) afterUpdate(now time.Time) {
	if m.rec.active && len(m.rec.pending) == 0 {
		m.finishReconciliation(now)
	}
}
