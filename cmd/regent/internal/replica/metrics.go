package replica

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/regent-sched/regent/cmd/regent/internal/fleet"
	"github.com/regent-sched/regent/core"
	"github.com/regent-sched/regent/ha"
	"github.com/regent-sched/regent/persist"
)

// metrics are a replica's Prometheus metrics, on a registry of its own.
// Gauges and the scheduler's counters are read at scrape time from the
// runner's and the scheduler's Status; the scheduler's counters start
// again with every term, so the totals of ended terms are carried over.
type metrics struct {
	reg      *prometheus.Registry
	failover prometheus.Histogram
	commitD  prometheus.Histogram
	commitN  prometheus.Histogram
	storeErr *prometheus.CounterVec

	mu       sync.Mutex
	sched    *core.Scheduler[fleet.State] // the latest term's scheduler
	carried  core.Counters                // sums of the ended terms' counters
	runner   func() ha.Status
	current  func() (*core.Scheduler[fleet.State], error)
	descs    map[string]*prometheus.Desc
	tasksBy  *prometheus.Desc
	readyFor func() error
}

func newMetrics(version string) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		failover: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "regent_failover_duration_seconds",
			Help:    "From the moment this replica saw no other leader to this replica's scheduler subscribed to Mesos, for every term it won.",
			Buckets: []float64{.05, .1, .2, .3, .5, .75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 30, 60},
		}),
		commitD: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "regent_store_commit_duration_seconds",
			Help:    "Latency of fenced commits to the store.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		commitN: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "regent_store_commit_batch_size",
			Help:    "Task records and state entries written or deleted per commit.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
		storeErr: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regent_store_errors_total",
			Help: "Failed store operations, by operation (load, commit) and kind (fenced, other).",
		}, []string{"op", "kind"}),
		descs: map[string]*prometheus.Desc{},
	}
	// Every series of regent_store_errors_total exists from the start, at
	// 0: a rate() or an alert on it then sees the first error as an
	// increase rather than as a new series.
	for _, op := range storeOps {
		for _, kind := range storeErrKinds {
			m.storeErr.WithLabelValues(op, kind)
		}
	}
	gauge := func(name, help string) {
		m.descs[name] = prometheus.NewDesc(name, help, nil, nil)
	}
	gauge("regent_is_leader", "1 while this replica holds the leadership term.")
	gauge("regent_leader_ready", "1 while this replica leads with its state loaded and its scheduler running.")
	gauge("regent_leader_known", "1 while this replica knows of a leader (itself included).")
	gauge("regent_leader_transitions_total", "Times this replica became leader or stopped leading.")
	gauge("regent_ready", "1 while /readyz answers 200.")
	gauge("regent_subscribed", "1 while this replica's scheduler is subscribed to a Mesos master.")
	gauge("regent_reconciliation_active", "1 while an explicit reconciliation runs.")
	gauge("regent_reconciliation_pending", "Tasks the running reconciliation still waits for.")
	gauge("regent_store_generation", "Generation of the last state the leader committed or loaded.")
	for _, c := range counterNames {
		m.descs[c.name] = prometheus.NewDesc(c.name, c.help, nil, nil)
	}
	m.tasksBy = prometheus.NewDesc("regent_tasks", "Tasks in the leader's state, by Mesos state.", []string{"state"}, nil)
	m.reg.MustRegister(m, m.failover, m.commitD, m.commitN, m.storeErr,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	bi := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "regent_build_info", Help: "Always 1; the labels say which build runs.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	bi.Set(1)
	m.reg.MustRegister(bi)
	return m
}

// counterNames are the scheduler's counters exported as totals.
var counterNames = []struct {
	name, help string
	get        func(core.Counters) uint64
}{
	{"regent_offers_received_total", "Offers received from Mesos.", func(c core.Counters) uint64 { return c.OffersReceived }},
	{"regent_offers_declined_total", "Offers declined.", func(c core.Counters) uint64 { return c.OffersDeclined }},
	{"regent_status_updates_total", "Task status updates received.", func(c core.Counters) uint64 { return c.Updates }},
	{"regent_acks_total", "Status updates acknowledged after their commit.", func(c core.Counters) uint64 { return c.Acks }},
	{"regent_tasks_launched_total", "Tasks launched.", func(c core.Counters) uint64 { return c.TasksLaunched }},
	{"regent_kills_total", "Kill calls sent.", func(c core.Counters) uint64 { return c.Kills }},
	{"regent_orphans_killed_total", "Tasks Mesos reported that the state did not know, killed.", func(c core.Counters) uint64 { return c.OrphansKilled }},
	{"regent_reconciliation_rounds_total", "Explicit reconciliation rounds sent.", func(c core.Counters) uint64 { return c.ReconcileRounds }},
	{"regent_reconciliations_total", "Reconciliations started.", func(c core.Counters) uint64 { return c.Reconciliations }},
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range m.descs {
		ch <- d
	}
	ch <- m.tasksBy
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	runner, current, readyFor := m.runner, m.current, m.readyFor
	m.mu.Unlock()
	if runner == nil {
		return
	}
	st := runner()
	g := func(name string, v float64) {
		ch <- prometheus.MustNewConstMetric(m.descs[name], prometheus.GaugeValue, v)
	}
	g("regent_is_leader", b2f(st.Leading))
	g("regent_leader_ready", b2f(st.Ready))
	g("regent_leader_known", b2f(st.Leader.ID != ""))
	ch <- prometheus.MustNewConstMetric(m.descs["regent_leader_transitions_total"], prometheus.CounterValue, float64(st.Transitions))
	g("regent_ready", b2f(readyFor() == nil))

	var ss core.Status
	sched, _ := current()
	totals := m.observe(sched)
	if sched != nil {
		ss = sched.Status()
	}
	g("regent_subscribed", b2f(sched != nil && ss.Subscribed))
	g("regent_reconciliation_active", b2f(ss.Reconciliation.Active))
	g("regent_reconciliation_pending", float64(ss.Reconciliation.Pending))
	g("regent_store_generation", float64(ss.Generation))
	for _, c := range counterNames {
		ch <- prometheus.MustNewConstMetric(m.descs[c.name], prometheus.CounterValue, float64(c.get(totals)))
	}
	for state, n := range ss.TasksByState {
		ch <- prometheus.MustNewConstMetric(m.tasksBy, prometheus.GaugeValue, float64(n), state)
	}
}

// observe notes the scheduler of the current term and returns the totals
// of every term so far.
func (m *metrics) observe(s *core.Scheduler[fleet.State]) core.Counters {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sched != nil && s != m.sched {
		// A term ended since the last scrape: its final counters join the
		// carried totals.
		m.carried = addCounters(m.carried, m.sched.Status().Counters)
		m.sched = nil
	}
	if s != nil {
		m.sched = s
		return addCounters(m.carried, s.Status().Counters)
	}
	return m.carried
}

func addCounters(a, b core.Counters) core.Counters {
	a.Events += b.Events
	a.Updates += b.Updates
	a.Acks += b.Acks
	a.Launches += b.Launches
	a.TasksLaunched += b.TasksLaunched
	a.DuplicateLaunch += b.DuplicateLaunch
	a.Kills += b.Kills
	a.OrphansKilled += b.OrphansKilled
	a.OrphansAdopted += b.OrphansAdopted
	a.OffersReceived += b.OffersReceived
	a.OffersDeclined += b.OffersDeclined
	a.StaleUpdates += b.StaleUpdates
	a.Reconciliations += b.Reconciliations
	a.ReconcileRounds += b.ReconcileRounds
	a.UnknownEvents += b.UnknownEvents
	a.UnknownTaskState += b.UnknownTaskState
	return a
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// instrumentedStore times commits and counts store errors.
type instrumentedStore struct {
	persist.Store
	m *metrics
}

func (s instrumentedStore) Load(ctx context.Context) (*persist.Snapshot, error) {
	snap, err := s.Store.Load(ctx)
	if err != nil {
		s.m.storeErr.WithLabelValues("load", errKind(err)).Inc()
	}
	return snap, err
}

func (s instrumentedStore) Commit(ctx context.Context, f persist.Fence, b persist.Batch) (uint64, error) {
	start := time.Now()
	gen, err := s.Store.Commit(ctx, f, b)
	if err != nil {
		s.m.storeErr.WithLabelValues("commit", errKind(err)).Inc()
		return gen, err
	}
	s.m.commitD.Observe(time.Since(start).Seconds())
	n := len(b.PutTasks) + len(b.DeleteTasks) + len(b.PutEntries) + len(b.DeleteEntries)
	if b.FrameworkID != nil {
		n++
	}
	s.m.commitN.Observe(float64(n))
	return gen, nil
}

// The label values of regent_store_errors_total: op is what failed, kind
// is errKind's verdict.
var (
	storeOps      = []string{"load", "commit"}
	storeErrKinds = []string{"fenced", "other"}
)

func errKind(err error) string {
	if errors.Is(err, persist.ErrFenced) {
		return "fenced"
	}
	return "other"
}
