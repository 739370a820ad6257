package core

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"go.uber.org/zap"

	"github.com/regent-sched/regent/persist"
)

// ErrQueueFull is returned by TrySend when the scheduler's inbox is full.
var ErrQueueFull = errors.New("core: message queue full")

// ErrStopped is returned to senders once the scheduler has stopped.
var ErrStopped = errors.New("core: scheduler stopped")

// Config configures a Scheduler. Zero durations take the defaults named.
type Config[S any] struct {
	Framework Framework[S]
	// Codec persists the framework's state; default JSONCodec.
	Codec Codec[S]
	// Store is where state is committed, under Fence.
	Store persist.Store
	Fence persist.Fence

	// Masters lists Mesos masters (http:// or https:// base URLs); the
	// leader is found by following 307s. Detector, when set, is asked
	// instead and may signal leader changes.
	Masters  []string
	Detector MasterSource

	// FrameworkInfo is sent on SUBSCRIBE; its ID is set from the store.
	// FailoverTimeout defaults to one week: with Mesos' default of 0 the
	// master kills every task the moment the scheduler disconnects.
	FrameworkInfo mesos.FrameworkInfo
	// JSON selects the JSON codec for Mesos calls (default protobuf).
	JSON bool

	// DefaultRefuse is the refuse_seconds for declines and unused offer
	// resources (default 5 s, Mesos' own default).
	DefaultRefuse time.Duration
	// BackoffMin and BackoffMax bound re-subscription backoff (0.5 s, 15 s).
	BackoffMin, BackoffMax time.Duration
	// WatchdogMisses is how many heartbeat intervals of silence drop the
	// subscription (default 5).
	WatchdogMisses int
	// CallTimeout bounds each Mesos call (default 10 s).
	CallTimeout time.Duration
	// ReconcileMin and ReconcileMax bound the explicit reconciliation
	// backoff (1 s, 60 s); ReconcileInterval starts a periodic one (15 min;
	// negative: never); StagingTimeout reconciles a launch with no update
	// for that long (60 s).
	ReconcileMin, ReconcileMax, ReconcileInterval, StagingTimeout time.Duration
	// TickInterval paces Tick events (default 1 s).
	TickInterval time.Duration
	// QueueSize bounds the inbox of user messages (default 1024). Send
	// blocks when it is full (back-pressure); TrySend fails with
	// ErrQueueFull.
	QueueSize int
	// MaxBatch bounds how many events the loop folds into one commit before
	// it waits for the commit in flight (default 4096).
	MaxBatch int

	Logger *zap.Logger
	// Now is the clock (default time.Now); tests may replace it.
	Now func() time.Time
}

// MasterSource finds Mesos masters: Candidates lists base URLs to try,
// best first; Changed is signalled when the leading master changes.
type MasterSource interface {
	Candidates() []string
	Changed() <-chan struct{}
}

func (c *Config[S]) defaults() error {
	if c.Framework == nil {
		return errors.New("core config: Framework is required")
	}
	if c.Store == nil {
		return errors.New("core config: Store is required")
	}
	if c.Detector == nil && len(c.Masters) == 0 {
		return errors.New("core config: no Mesos master (Masters or Detector)")
	}
	if c.FrameworkInfo.Name == "" || c.FrameworkInfo.User == "" {
		return errors.New("core config: FrameworkInfo needs Name and User")
	}
	if c.Codec == nil {
		c.Codec = JSONCodec[S]{}
	}
	if c.FrameworkInfo.FailoverTimeout == nil {
		week := (7 * 24 * time.Hour).Seconds()
		c.FrameworkInfo.FailoverTimeout = &week
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.DefaultRefuse, 5*time.Second)
	def(&c.BackoffMin, 500*time.Millisecond)
	def(&c.BackoffMax, 15*time.Second)
	def(&c.CallTimeout, 10*time.Second)
	def(&c.ReconcileMin, time.Second)
	def(&c.ReconcileMax, time.Minute)
	def(&c.ReconcileInterval, 15*time.Minute)
	def(&c.StagingTimeout, time.Minute)
	def(&c.TickInterval, time.Second)
	if c.WatchdogMisses == 0 {
		c.WatchdogMisses = 5
	}
	if c.QueueSize == 0 {
		c.QueueSize = 1024
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 4096
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	switch {
	case c.BackoffMin < 0 || c.BackoffMax < c.BackoffMin:
		return fmt.Errorf("core config: backoff %v..%v is not a range", c.BackoffMin, c.BackoffMax)
	case c.ReconcileMin < 0 || c.ReconcileMax < c.ReconcileMin:
		return fmt.Errorf("core config: reconcile backoff %v..%v is not a range", c.ReconcileMin, c.ReconcileMax)
	case c.TickInterval < 0 || c.CallTimeout < 0 || c.DefaultRefuse < 0:
		return errors.New("core config: negative duration")
	case c.QueueSize < 0 || c.MaxBatch < 0 || c.WatchdogMisses < 0:
		return errors.New("core config: negative size")
	}
	return nil
}

// Scheduler runs one framework while its replica leads: one serial loop
// owns the state; Mesos events, user messages and timers are its inputs;
// every state change is committed (group commit) before the Mesos calls
// and replies that depend on it go out.
type Scheduler[S any] struct {
	cfg   Config[S]
	inbox chan userMsg
	done  chan struct{}

	nextID atomic.Uint64
	status atomic.Pointer[Status]
	fwID   atomic.Pointer[string] // the committed FrameworkID

	replyMu sync.Mutex
	replies map[uint64]chan Reply // Ask callers waiting for their Reply
}

type userMsg struct {
	id      uint64
	payload any
	reply   chan Reply // nil for Send
}

// Status is a snapshot of the scheduler for status pages and metrics.
type Status struct {
	FrameworkID    string          `json:"framework_id"`
	Subscribed     bool            `json:"subscribed"`
	Master         string          `json:"master,omitempty"`
	Tasks          int             `json:"tasks"`
	TasksByState   map[string]int  `json:"tasks_by_state"`
	Reconciliation ReconcileStatus `json:"reconciliation"`
	Counters       Counters        `json:"counters"`
	Commits        uint64          `json:"commits"`
	Generation     uint64          `json:"generation"`
}

// New validates cfg and returns a scheduler ready to Run.
func New[S any](cfg Config[S]) (*Scheduler[S], error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	s := &Scheduler[S]{cfg: cfg, inbox: make(chan userMsg, cfg.QueueSize), done: make(chan struct{}),
		replies: map[uint64]chan Reply{}}
	s.status.Store(&Status{})
	return s, nil
}

// Status returns the latest snapshot of the scheduler's progress.
func (s *Scheduler[S]) Status() Status { return *s.status.Load() }

// Send queues a message for the framework's Handle (as UserMessage),
// waiting while the inbox is full.
func (s *Scheduler[S]) Send(ctx context.Context, payload any) error {
	return s.enqueue(ctx, userMsg{id: s.nextID.Add(1), payload: payload}, true)
}

// TrySend queues a message without waiting: ErrQueueFull when the inbox is
// full.
func (s *Scheduler[S]) TrySend(payload any) error {
	return s.enqueue(context.Background(), userMsg{id: s.nextID.Add(1), payload: payload}, false)
}

// Ask sends a request and waits for the framework's Reply, which is
// delivered once every state change made up to it is committed.
func (s *Scheduler[S]) Ask(ctx context.Context, payload any) (any, error) {
	m := userMsg{id: s.nextID.Add(1), payload: payload, reply: make(chan Reply, 1)}
	if err := s.enqueue(ctx, m, true); err != nil {
		return nil, err
	}
	select {
	case r := <-m.reply:
		return r.Value, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.done:
		return nil, ErrStopped
	}
}

func (s *Scheduler[S]) enqueue(ctx context.Context, m userMsg, wait bool) error {
	select {
	case <-s.done:
		return ErrStopped
	default:
	}
	if !wait {
		select {
		case s.inbox <- m:
			return nil
		default:
			return ErrQueueFull
		}
	}
	select {
	case s.inbox <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return ErrStopped
	}
}

// commitResult is what the committer reports for one batch.
type commitResult struct {
	gen uint64
	err error
}

// Run loads snap, subscribes to Mesos and runs the loop until ctx ends
// (nil), leadership is lost (an error wrapping persist.ErrFenced), or the
// master makes re-subscribing pointless (ErrFailedOver,
// ErrFrameworkRemoved). A Scheduler runs once.
func (s *Scheduler[S]) Run(ctx context.Context, snap *persist.Snapshot) (err error) {
	defer close(s.done)
	cfg := s.cfg
	log := cfg.Logger
	m := newMachine(cfg.Framework, cfg.Codec, machineOptions{
		defaultFilters:    &mesos.Filters{RefuseSeconds: ptr(cfg.DefaultRefuse.Seconds())},
		reconcileFilters:  &mesos.Filters{RefuseSeconds: ptr(cfg.DefaultRefuse.Seconds())},
		reconcileMin:      cfg.ReconcileMin,
		reconcileMax:      cfg.ReconcileMax,
		reconcileInterval: cfg.ReconcileInterval,
		stagingTimeout:    cfg.StagingTimeout,
		reconcileBatch:    1000,
	}, log)
	if snap == nil {
		snap = &persist.Snapshot{}
	}
	if err := m.restore(snap); err != nil {
		return fmt.Errorf("load state: %w", err)
	}
	id := m.frameworkID
	s.fwID.Store(&id)
	generation := snap.Generation

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	effectsCh := make(chan []effect, 64)
	commits := make(chan persist.Batch, 1)
	commitDone := make(chan commitResult, 1)
	var closeIdle func()
	defer func() {
		cancel()
		close(commits)
		close(effectsCh)
		wg.Wait()
		closeIdle()
	}()

	// The Mesos connection.
	events := make(chan connEvent, 256)
	connErr := make(chan error, 1)
	var do httpcli.DoFunc
	do, closeIdle = newTransport(cfg.CallTimeout)
	cn := newConn(connConfig{
		endpoints:      s.endpoints,
		info:           s.frameworkInfo,
		json:           cfg.JSON,
		backoffMin:     cfg.BackoffMin,
		backoffMax:     cfg.BackoffMax,
		watchdogMisses: cfg.WatchdogMisses,
		callTimeout:    cfg.CallTimeout,
		maxRedirects:   8,
		do:             do,
		log:            log,
		rand:           jitter,
		committedID: func() string {
			if id := s.fwID.Load(); id != nil {
				return *id
			}
			return ""
		},
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		connErr <- cn.run(ctx, events)
	}()
	if cfg.Detector != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case <-cfg.Detector.Changed():
					if sub := cn.current(); sub != nil {
						log.Info("leading master changed: re-subscribing")
						cn.dropIf(sub)
					}
				}
			}
		}()
	}

	// The effects runner: each batch only after its commit, and after the
	// batch before it. Calls keep their order, except acknowledgements,
	// which depend on nothing but their commit and go out in parallel.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for effs := range effectsCh {
			s.runEffects(ctx, cn, effs)
		}
	}()

	// The committer: one batch in flight at a time (group commit). Commits
	// outlive ctx by up to CallTimeout so that a graceful stop can write what
	// is pending.
	commitCtx := context.WithoutCancel(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for b := range commits {
			cctx, ccancel := context.WithTimeout(commitCtx, cfg.CallTimeout)
			gen, err := cfg.Store.Commit(cctx, cfg.Fence, b)
			ccancel()
			commitDone <- commitResult{gen: gen, err: err}
		}
	}()

	var inflight []effect
	var inflightID *string // the FrameworkID the batch in flight commits
	busy := false
	var commitsN uint64
	subscribed := false
	master := ""

	flush := func() error {
		if busy || !m.pending() {
			return nil
		}
		b, effs, err := m.takeBatch()
		if err != nil {
			return err
		}
		if b.Empty() {
			// Nothing to write: the effects only wait for earlier commits.
			effectsCh <- effs
			return nil
		}
		busy = true
		inflight, inflightID = effs, b.FrameworkID
		commits <- b
		return nil
	}
	// The status is published every tick, and at once when the
	// subscription changes (operators and drills wait on it).
	var pubSubscribed bool
	var pubMaster string
	publish := func() {
		pubSubscribed, pubMaster = subscribed, master
		st := &Status{FrameworkID: m.frameworkID, Subscribed: subscribed, Master: master, Tasks: len(m.tasks),
			TasksByState: map[string]int{}, Reconciliation: m.rec.status(), Counters: m.counters,
			Commits: commitsN, Generation: generation}
		for _, t := range m.tasks {
			st.TasksByState[t.State.String()]++
		}
		s.status.Store(st)
	}
	committed := func(r commitResult) error {
		busy = false
		if r.err != nil {
			return fmt.Errorf("commit: %w", r.err)
		}
		commitsN++
		generation = r.gen
		if inflightID != nil {
			// What the batch wrote, not the machine's id now: a later
			// subscription may have brought another, not yet committed.
			s.fwID.Store(inflightID)
		}
		effectsCh <- inflight
		inflight, inflightID = nil, nil
		return nil
	}

	ticker := time.NewTicker(cfg.TickInterval)
	defer ticker.Stop()
	// Once Run returns the connection is gone: the last status says so.
	defer func() { subscribed = false; publish() }()
	publish()
	for {
		select {
		case <-ctx.Done():
			return s.drain(m, busy, commits, commitDone)
		case err := <-connErr:
			if err == nil { // ctx ended while the connection noticed first
				return s.drain(m, busy, commits, commitDone)
			}
			return err
		case r := <-commitDone:
			if err := committed(r); err != nil {
				return err
			}
		case ce := <-events:
			// Fold whatever else is ready into the same batch.
			for n := 0; n < cfg.MaxBatch; n++ {
				if err := s.handleConnEvent(m, ce, &subscribed, &master); err != nil {
					cancel() // no call goes out on the new subscription
					if derr := s.drain(m, busy, commits, commitDone); derr != nil {
						err = fmt.Errorf("%w (and %w)", err, derr)
					}
					return err
				}
				if n+1 == cfg.MaxBatch || len(events) == 0 {
					break
				}
				ce = <-events
			}
		case um := <-s.inbox:
			if um.reply != nil {
				s.replyMu.Lock()
				s.replies[um.id] = um.reply
				s.replyMu.Unlock()
			}
			m.handle(cfg.Now(), UserMessage{ID: um.id, Payload: um.payload, Request: um.reply != nil})
		case <-ticker.C:
			m.tick(cfg.Now())
			publish()
		}
		if err := flush(); err != nil {
			return err
		}
		if subscribed != pubSubscribed || master != pubMaster {
			publish()
		}
	}
}

// drain ends a graceful stop: it waits for the commit in flight, then
// commits what is still pending, so that a clean hand-over loses no state
// change. The effects of that last batch are not sent (the connection is
// closing); Mesos re-sends unacknowledged updates and reconciliation finds
// launches that were never sent.
func (s *Scheduler[S]) drain(m *machine[S], busy bool, commits chan<- persist.Batch, commitDone <-chan commitResult) error {
	if busy {
		if r := <-commitDone; r.err != nil {
			return fmt.Errorf("commit: %w", r.err)
		}
	}
	if !m.pending() {
		return nil
	}
	b, _, err := m.takeBatch()
	if err != nil || b.Empty() {
		return err
	}
	commits <- b
	if r := <-commitDone; r.err != nil {
		return fmt.Errorf("final commit: %w", r.err)
	}
	return nil
}

// ackParallelism bounds the acknowledgements in flight at once.
const ackParallelism = 8

func (s *Scheduler[S]) runEffects(ctx context.Context, cn *conn, effs []effect) {
	log := s.cfg.Logger
	send := func(c *scheduler.Call) {
		if err := cn.call(ctx, c); err != nil && ctx.Err() == nil {
			log.Warn("mesos call failed", zap.Stringer("type", c.Type), zap.Error(err))
		}
	}
	acks := make(chan *scheduler.Call)
	var wg sync.WaitGroup
	started := 0
	for _, e := range effs {
		switch {
		case e.reply != nil:
			s.deliverReply(e.reply)
		case e.call.Type == scheduler.Call_ACKNOWLEDGE:
			if started < ackParallelism {
				started++
				wg.Add(1)
				go func() {
					defer wg.Done()
					for c := range acks {
						send(c)
					}
				}()
			}
			acks <- e.call
		default:
			send(e.call)
		}
	}
	close(acks)
	wg.Wait()
}

// deliverReply hands a Reply to the Ask waiting for it.
func (s *Scheduler[S]) deliverReply(r *Reply) {
	s.replyMu.Lock()
	ch := s.replies[r.To]
	delete(s.replies, r.To)
	s.replyMu.Unlock()
	if ch != nil {
		ch <- *r
	}
}

// handleConnEvent feeds one event of the connection to the machine. A
// SUBSCRIBED under another FrameworkID than the state's ends the
// scheduler (ErrFrameworkIDChanged).
func (s *Scheduler[S]) handleConnEvent(m *machine[S], ce connEvent, subscribed *bool, master *string) error {
	now := s.cfg.Now()
	if ce.ev == nil {
		*subscribed = false
		return nil
	}
	if ce.ev.Type == scheduler.Event_SUBSCRIBED {
		if id := ce.ev.GetSubscribed().GetFrameworkID().GetValue(); m.frameworkID != "" && id != m.frameworkID {
			s.cfg.Logger.Error("the master subscribed us under another FrameworkID than the state's: stopping, to start again from the committed state",
				zap.String("state", m.frameworkID), zap.String("got", id))
			return fmt.Errorf("%w: subscribed as %s, the state holds %s", ErrFrameworkIDChanged, id, m.frameworkID)
		}
		*subscribed = true
		if mi := ce.ev.Subscribed.MasterInfo; mi != nil && mi.Address != nil {
			*master = fmt.Sprintf("%s:%d", mi.Address.GetHostname(), mi.Address.Port)
		}
	}
	m.mesosEvent(now, ce.ev)
	return nil
}

func (s *Scheduler[S]) endpoints() []string {
	if s.cfg.Detector != nil {
		return s.cfg.Detector.Candidates()
	}
	return s.cfg.Masters
}

// frameworkInfo is the FrameworkInfo for the next SUBSCRIBE: the
// configured one with the committed FrameworkID.
func (s *Scheduler[S]) frameworkInfo() mesos.FrameworkInfo {
	info := s.cfg.FrameworkInfo
	if id := s.fwID.Load(); id != nil && *id != "" {
		info.ID = &mesos.FrameworkID{Value: *id}
	}
	return info
}

func ptr[T any](v T) *T { return &v }

// MasterDetector is the MasterSource regent ships.
var _ MasterSource = (*MasterDetector)(nil)
