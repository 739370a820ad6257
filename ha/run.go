package ha

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/regent-sched/regent/core"
	"github.com/regent-sched/regent/persist"
)

// ErrFatal wraps the errors that end Run: campaigning again cannot help
// and an operator must look (a corrupt or newer store, a FrameworkID taken
// over by a scheduler outside the group, a framework Mesos removed).
var ErrFatal = errors.New("ha: fatal")

// Config configures Run. Scheduler is the core configuration of the
// framework; its Store and Fence are set by Run for every term.
type Config[S any] struct {
	Elector   Elector
	Store     persist.Store
	Scheduler core.Config[S]

	// BackoffMin and BackoffMax bound the wait before campaigning again
	// after a failed campaign or takeover (default 200 ms, 5 s).
	BackoffMin, BackoffMax time.Duration
	// LoadTimeout bounds the state load after winning (default 30 s).
	LoadTimeout time.Duration
	// StopTimeout is how long leader work may take to return once its term
	// ended before Run calls OnStuck (default 10 s).
	StopTimeout time.Duration
	// OnStuck is called when leader work outlives its term by StopTimeout:
	// the process may be acting as a second leader. The default logs and
	// exits the process with status 3, the only safe answer in a server;
	// an embedding program may choose otherwise. If OnStuck returns, the
	// Runner keeps waiting for the work and holds the term meanwhile (a
	// stepped-down term keeps its key and lease, so nobody else is
	// elected); but a term that was lost (lease or session expired) may
	// already have a successor while the stuck work still runs, which is
	// why the default exits.
	OnStuck func(error)
	// OnTransition, when set, is called after every change of Status.
	OnTransition func(Status)
	Logger       *zap.Logger
}

// Status is what a replica knows about the election and its own work.
type Status struct {
	// Leading is true while this replica holds a term.
	Leading bool `json:"leading"`
	// Ready is true once a leader's state is loaded and its scheduler runs
	// (writes sent before that wait or are refused with ErrNotReady), until
	// the term's work is asked to stop.
	Ready bool `json:"ready"`
	// Stopping is true from the moment a leader's work is asked to stop
	// (term lost, step-down, shutdown) until its term is resigned: it no
	// longer serves, and the next leader may already be elected.
	Stopping bool `json:"stopping,omitempty"`
	// Leader is who leads: this replica from the moment it wins a term
	// until the term is over, otherwise the leader as observed in the
	// store (zero when none leads or this replica's own term just ended
	// and the store has not yet shown the next leader).
	Leader LeaderInfo `json:"leader"`
	// Term is this replica's fencing token while it leads.
	Term           int64     `json:"term,omitempty"`
	Transitions    int       `json:"transitions"`
	LastTransition time.Time `json:"last_transition,omitempty"`
	LastReason     string    `json:"last_reason,omitempty"`
	// Scheduler is the running scheduler's snapshot (FrameworkID,
	// subscription, tasks by state, reconciliation progress) while this
	// replica is the ready leader; nil otherwise. Runner.Status fills it;
	// OnTransition callbacks get nil.
	Scheduler *core.Status `json:"scheduler,omitempty"`
}

// Runner runs the campaign loop; Run is a shortcut for New(cfg).Run(ctx).
type Runner[S any] struct {
	cfg Config[S]
	log *zap.Logger

	mu     sync.Mutex
	status Status
	// observed is the leader the elector last reported; Status.Leader
	// shows it while this replica does not lead.
	observed LeaderInfo
	sched    *core.Scheduler[S]
	// stepDown ends the current term's work (nil while not leading).
	stepDown context.CancelCauseFunc
	ready    chan struct{} // closed when the current term's scheduler runs
	ran      atomic.Bool
}

// ErrNotReady is returned to requests that need the leader's scheduler
// while this replica does not lead, or leads but is still loading state.
var ErrNotReady = errors.New("ha: not the ready leader")

// Run campaigns for leadership until ctx ends; while leading it loads the
// state and runs the scheduler; when the term ends it stops the scheduler,
// resigns, and campaigns again. It returns nil when ctx ends, or an error
// wrapping ErrFatal.
func Run[S any](ctx context.Context, cfg Config[S]) error {
	r, err := New(cfg)
	if err != nil {
		return err
	}
	return r.Run(ctx)
}

// New validates cfg.
func New[S any](cfg Config[S]) (*Runner[S], error) {
	if cfg.Elector == nil {
		return nil, errors.New("ha config: Elector is required")
	}
	if cfg.Store == nil {
		return nil, errors.New("ha config: Store is required")
	}
	if cfg.Scheduler.Framework == nil {
		return nil, errors.New("ha config: Scheduler.Framework is required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.BackoffMin, 200*time.Millisecond)
	def(&cfg.BackoffMax, 5*time.Second)
	def(&cfg.LoadTimeout, 30*time.Second)
	def(&cfg.StopTimeout, 10*time.Second)
	if cfg.BackoffMin < 0 || cfg.BackoffMax < cfg.BackoffMin {
		return nil, fmt.Errorf("ha config: backoff %v..%v is not a range", cfg.BackoffMin, cfg.BackoffMax)
	}
	if cfg.LoadTimeout < 0 || cfg.StopTimeout < 0 {
		return nil, errors.New("ha config: negative timeout")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.OnStuck == nil {
		log := cfg.Logger
		cfg.OnStuck = func(err error) {
			log.Error("leader work outlived its term: exiting so that no second leader acts", zap.Error(err))
			_ = log.Sync()
			os.Exit(3)
		}
	}
	// Validate the scheduler's configuration now, not at the first term.
	probe := cfg.Scheduler
	probe.Store = cfg.Store
	if _, err := core.New(probe); err != nil {
		return nil, fmt.Errorf("ha config: %w", err)
	}
	return &Runner[S]{cfg: cfg, log: cfg.Logger, ready: make(chan struct{})}, nil
}

// Status returns what the replica knows now.
func (r *Runner[S]) Status() Status {
	r.mu.Lock()
	st, sched := r.status, r.sched
	r.mu.Unlock()
	if sched != nil && st.Ready {
		ss := sched.Status()
		st.Scheduler = &ss
	}
	return st
}

// Scheduler returns the running scheduler while this replica is the ready
// leader, else ErrNotReady.
func (r *Runner[S]) Scheduler() (*core.Scheduler[S], error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sched == nil || !r.status.Ready {
		return nil, ErrNotReady
	}
	return r.sched, nil
}

// ErrNotLeading is returned by StepDown when this replica does not lead.
var ErrNotLeading = errors.New("ha: not leading")

// errSteppedDown is the cause of a term's end that StepDown asked for.
var errSteppedDown = errors.New("stepped down")

// StepDown ends this replica's term gracefully, as a stop would — the
// scheduler stops, commits what is pending, and the term is resigned so
// that the next candidate takes over at once — but Run goes on and this
// replica campaigns again, behind the others. It returns when the stop has
// been asked for, not when it is done; ErrNotLeading if there is no term.
// Operators use it to move the leadership (a drill, a node drain).
func (r *Runner[S]) StepDown() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stepDown == nil {
		return ErrNotLeading
	}
	r.log.Info("stepping down on request")
	r.stepDown(errSteppedDown)
	return nil
}

// WaitReady blocks until this replica is the ready leader, or ctx ends.
// It serves writes that arrive during a takeover: they wait for the load
// instead of being lost.
func (r *Runner[S]) WaitReady(ctx context.Context) (*core.Scheduler[S], error) {
	for {
		r.mu.Lock()
		ready, s, ok := r.ready, r.sched, r.status.Ready
		r.mu.Unlock()
		if ok && s != nil {
			return s, nil
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (r *Runner[S]) update(f func(*Status)) {
	r.mu.Lock()
	f(&r.status)
	st := r.status
	r.mu.Unlock()
	if r.cfg.OnTransition != nil {
		r.cfg.OnTransition(st)
	}
}

// Run is the campaign loop; see the package function Run. A Runner runs once.
func (r *Runner[S]) Run(ctx context.Context) error {
	if !r.ran.CompareAndSwap(false, true) {
		return errors.New("ha: Runner.Run called twice")
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	octx, ocancel := context.WithCancel(ctx)
	defer ocancel()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for li := range r.cfg.Elector.Observe(octx) {
			r.update(func(s *Status) {
				if li != r.observed {
					r.log.Info("leader observed", zap.String("leader", li.ID), zap.String("address", li.Address), zap.Int64("token", li.Token))
				}
				r.observed = li
				if !s.Leading {
					s.Leader = li
				}
			})
		}
	}()

	backoff := r.cfg.BackoffMin
	for ctx.Err() == nil {
		term, err := r.cfg.Elector.Campaign(ctx)
		if ctx.Err() != nil {
			if term != nil {
				r.resign(term)
			}
			return nil
		}
		if err != nil {
			r.log.Warn("campaign failed; campaigning again", zap.Error(err), zap.Duration("after", backoff))
			if !sleep(ctx, jittered(backoff)) {
				return nil
			}
			backoff = min(backoff*2, r.cfg.BackoffMax)
			continue
		}
		err = r.lead(ctx, term)
		if errors.Is(err, ErrFatal) {
			return err
		}
		if err != nil {
			r.log.Warn("term ended with an error; campaigning again", zap.Error(err), zap.Duration("after", backoff))
			if !sleep(ctx, jittered(backoff)) {
				return nil
			}
			backoff = min(backoff*2, r.cfg.BackoffMax)
			continue
		}
		backoff = r.cfg.BackoffMin
	}
	return nil
}

// lead runs one term: load, run the scheduler until the term or ctx ends,
// wait for it to return, then resign. A term never outlives its work and
// nothing of it is reused by the next one.
func (r *Runner[S]) lead(ctx context.Context, term *Term) (err error) {
	now := time.Now()
	r.log.Info("leading", zap.Int64("term", term.Token), zap.String("fence", term.Fence.Key))
	r.update(func(s *Status) {
		s.Leading, s.Ready, s.Term = true, false, term.Token
		s.Leader = LeaderInfo{Candidate: term.Self, Token: term.Token}
		s.Transitions++
		s.LastTransition, s.LastReason = now, "elected"
	})
	defer func() {
		r.resign(term)
		reason := "resigned"
		if cause := term.Err(); cause != nil && !errors.Is(cause, ErrResigned) {
			reason = cause.Error()
		}
		if err != nil {
			reason = err.Error()
		}
		r.unserve()
		r.update(func(s *Status) {
			s.Leading, s.Ready, s.Stopping, s.Term = false, false, false, 0
			s.Leader = r.observed
			if s.Leader.Token == term.Token {
				s.Leader = LeaderInfo{} // the store has not shown the term's end yet
			}
			s.Transitions++
			s.LastTransition, s.LastReason = time.Now(), reason
		})
		r.log.Info("term over", zap.Int64("term", term.Token), zap.String("reason", reason))
	}()

	// The work context ends with the term or with ctx (graceful stop).
	wctx, wcancelCause := context.WithCancelCause(term.Context())
	wcancel := func() { wcancelCause(context.Canceled) }
	defer wcancel()
	stop := context.AfterFunc(ctx, wcancel)
	defer stop()
	r.mu.Lock()
	r.stepDown = wcancelCause
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.stepDown = nil
		r.mu.Unlock()
	}()

	lctx, lcancel := context.WithTimeout(wctx, r.cfg.LoadTimeout)
	snap, err := r.cfg.Store.Load(lctx)
	lcancel()
	if err != nil {
		if errors.Is(err, persist.ErrCorrupt) || errors.Is(err, persist.ErrNewerFormat) || errors.Is(err, persist.ErrForeign) {
			return fmt.Errorf("%w: load state: %w", ErrFatal, err)
		}
		return fmt.Errorf("load state: %w", err)
	}
	if snap.FrameworkID == "" && len(snap.Tasks) > 0 {
		// Subscribing as a new framework would redeploy everything.
		return fmt.Errorf("%w: the store holds %d tasks but no FrameworkID: refusing to register a new framework", ErrFatal, len(snap.Tasks))
	}
	cfg := r.cfg.Scheduler
	cfg.Store, cfg.Fence = r.cfg.Store, term.Fence
	s, err := core.New(cfg)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrFatal, err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(wctx, snap) }()
	r.mu.Lock()
	r.sched = s
	close(r.ready)
	r.mu.Unlock()
	r.update(func(st *Status) { st.Ready = true })
	r.log.Info("ready: state loaded, scheduler running", zap.Int64("term", term.Token),
		zap.Int("tasks", len(snap.Tasks)), zap.String("framework_id", snap.FrameworkID))

	var runErr error
	select {
	case runErr = <-done:
		r.unserve()
	case <-wctx.Done():
		// A stopping scheduler serves nobody: its status (subscribed, the
		// tasks) is about to be stale, and the next leader may already be
		// elected before this one resigns.
		r.unserve()
		// The term ended or we are stopping: the work must return before we
		// resign, and before the lease could have let another replica in.
		t := time.NewTimer(r.cfg.StopTimeout)
		select {
		case runErr = <-done:
			t.Stop()
		case <-t.C:
			r.cfg.OnStuck(fmt.Errorf("scheduler did not stop within %v after term %d ended: %v",
				r.cfg.StopTimeout, term.Token, context.Cause(wctx)))
			runErr = <-done
		}
	}
	switch {
	case errors.Is(runErr, core.ErrFailedOver) && r.deposed(term):
		// Another replica of the group took over while this one could not
		// tell (a frozen or cut-off leader wakes up to its stream closed
		// by the new leader's SUBSCRIBE): not fatal, the election goes on.
		r.log.Info("framework failed over to the replica that took over from this term",
			zap.Int64("term", term.Token), zap.NamedError("term_end", term.Err()))
		return nil
	case errors.Is(runErr, core.ErrFailedOver), errors.Is(runErr, core.ErrFrameworkRemoved):
		return fmt.Errorf("%w: %w", ErrFatal, runErr)
	case errors.Is(runErr, persist.ErrFenced):
		return nil // the term was lost; the election goes on
	case runErr != nil && term.Err() == nil && ctx.Err() == nil:
		return runErr
	}
	return nil
}

// deposed reports whether term ends by the time its current local
// deadline (plus a second) has passed. A "Framework failed over" while the
// term still holds after that came from a scheduler outside the group.
// Electors that do not report a deadline get StopTimeout.
func (r *Runner[S]) deposed(term *Term) bool {
	wait := r.cfg.StopTimeout
	if d := term.deadline(); !d.IsZero() {
		if time.Now().After(d) {
			// Past its own deadline the term is over, whether or not its
			// monitor has noticed yet (a process thawed after SIGSTOP
			// runs this before the monitor's goroutine does).
			return true
		}
		wait = time.Until(d) + time.Second
	}
	t := time.NewTimer(max(wait, 0))
	defer t.Stop()
	select {
	case <-term.Done():
		return true
	case <-t.C:
		d := term.deadline()
		return term.Err() != nil || (!d.IsZero() && time.Now().After(d))
	}
}

// unserve stops handing out this term's scheduler; requests that wait in
// WaitReady then wait for a later term. Safe to call more than once.
func (r *Runner[S]) unserve() {
	r.mu.Lock()
	served := r.sched != nil
	if served {
		r.sched = nil
		r.ready = make(chan struct{})
	}
	r.mu.Unlock()
	if served {
		r.update(func(s *Status) { s.Ready, s.Stopping = false, true })
	}
}

func (r *Runner[S]) resign(term *Term) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := term.Resign(ctx); err != nil {
		r.log.Warn("resign", zap.Error(err))
	}
}

func jittered(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
