package ha

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regent-sched/regent/persist"
)

// Errors callers branch on with errors.Is.
var (
	// ErrLeadershipLost ends a term: the lease or session expired, could not
	// be renewed in time, or the leader key vanished.
	ErrLeadershipLost = errors.New("ha: leadership lost")
	// ErrResigned ends a term that was given up on purpose.
	ErrResigned = errors.New("ha: resigned")
	// ErrClosed is returned by an elector used after Close.
	ErrClosed = errors.New("ha: elector closed")
)

// Candidate is what a replica tells the others about itself.
type Candidate struct {
	// ID names the replica (default: host name and pid).
	ID string `json:"id"`
	// Address is where its REST API and status page answer, for standbys
	// to show and redirect to.
	Address string `json:"address,omitempty"`
}

// LeaderInfo is who leads now, as a standby sees it. A zero LeaderInfo
// (empty ID) means no replica leads.
type LeaderInfo struct {
	Candidate
	// Token is the leader's fencing token (its key's create revision, or
	// its znode's sequence number): it grows with every term.
	Token int64 `json:"token"`
}

// Elector campaigns for the leadership of one framework. Each Campaign
// uses a fresh etcd session or ZooKeeper node: nothing of an earlier term
// is reused.
type Elector interface {
	// Campaign blocks until this replica leads, ctx ends, or the store
	// fails; then it returns the Term. A failed campaign leaves nothing
	// behind: the caller may simply campaign again.
	Campaign(ctx context.Context) (*Term, error)
	// Observe reports the current leader now and after every change,
	// deletions included, until ctx ends. It never infers leadership from
	// a cache: every value comes from the store.
	Observe(ctx context.Context) <-chan LeaderInfo
	// Candidates lists the replicas campaigning now, leader first, read
	// from the store.
	Candidates(ctx context.Context) ([]LeaderInfo, error)
	// Close ends every term and releases the elector's resources.
	Close() error
}

// Term is one leadership term. Its Context is cancelled the moment the
// leadership is in doubt — on a local deadline computed from the last
// successful renewal, not only when the store says so — so that leader
// work stops before another replica can be elected.
type Term struct {
	// Fence makes every commit of this term conditional on it.
	Fence persist.Fence
	// Token is the fencing token as a number (see LeaderInfo.Token).
	Token int64
	// Started is when the campaign was won.
	Started time.Time
	// Self is the candidate that won: this replica, as the others see it.
	Self Candidate

	ctx    context.Context
	cancel context.CancelCauseFunc
	resign func(context.Context) error
	// until is the local deadline of the term as its elector last set it
	// (nil: unknown), with its monotonic clock reading: the term ends then
	// unless renewed.
	until atomic.Pointer[time.Time]

	mu       sync.Mutex
	resigned bool
}

func newTerm(fence persist.Fence, token int64, resign func(context.Context) error) *Term {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &Term{Fence: fence, Token: token, Started: time.Now(), ctx: ctx, cancel: cancel, resign: resign}
}

// extend records the term's current local deadline.
func (t *Term) extend(deadline time.Time) { t.until.Store(&deadline) }

// deadline is the term's current local deadline, zero when unknown.
func (t *Term) deadline() time.Time {
	if d := t.until.Load(); d != nil {
		return *d
	}
	return time.Time{}
}

// Context is cancelled when the term ends; context.Cause tells why
// (ErrLeadershipLost, ErrResigned, ...).
func (t *Term) Context() context.Context { return t.ctx }

// Done is closed when the term ends.
func (t *Term) Done() <-chan struct{} { return t.ctx.Done() }

// Err returns why the term ended, or nil while it lasts.
func (t *Term) Err() error {
	if t.ctx.Err() == nil {
		return nil
	}
	return context.Cause(t.ctx)
}

// lose ends the term with cause (the first cause wins).
func (t *Term) lose(cause error) { t.cancel(cause) }

// Resign ends the term and deletes its key or node, guarded by the term's
// own fence, so that the next replica takes over at once instead of after a
// TTL. Call it only after the leader work has returned. It is safe to call
// more than once and after the term was lost.
func (t *Term) Resign(ctx context.Context) error {
	t.mu.Lock()
	if t.resigned {
		t.mu.Unlock()
		return nil
	}
	t.resigned = true
	t.mu.Unlock()
	t.lose(ErrResigned)
	return t.resign(ctx)
}
