package ha

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/regent-sched/regent/persist"
)

// EtcdOptions configure an etcd elector.
type EtcdOptions struct {
	// Prefix and Framework place the election under
	// <Prefix>/<Framework>/leader/ (default prefix "/regent"), next to the
	// state persist keeps for the same framework.
	Prefix    string
	Framework string
	Candidate Candidate
	// TTL of the session lease (default 5 s, minimum 2 s: etcd's own
	// default of 60 s would leave a framework leaderless for a minute).
	TTL time.Duration
	// Margin is how long before the lease could expire that the leader
	// gives up its term when renewals fail (default TTL/4).
	Margin time.Duration
	Logger *zap.Logger
}

// EtcdElector elects a leader through an etcd concurrency.Election on a
// session with a short TTL. The term's fence is the leader key and its
// CreateRevision.
//
// Timing: the lease is renewed every TTL/3. The server lets it expire no
// earlier than TTL after the last renewal it processed, and it processed
// that renewal after we sent it; so a term whose renewals fail is ended at
// (send time of the last successful renewal) + TTL − Margin, which is
// before any other replica can see the key deleted and win. A paused
// process (SIGSTOP) wakes up past its deadline and ends its term at once,
// before its next store write, which the fence refuses anyway.
type EtcdElector struct {
	client *clientv3.Client
	opts   EtcdOptions
	dir    string // <prefix>/<framework>/leader/
	value  string
	log    *zap.Logger

	mu     sync.Mutex
	closed bool
	terms  map[*Term]struct{}
	wg     sync.WaitGroup
}

// NewEtcd returns an elector over client. The client stays the caller's.
func NewEtcd(client *clientv3.Client, opts EtcdOptions) (*EtcdElector, error) {
	if client == nil {
		return nil, errors.New("ha etcd: no client")
	}
	if opts.Prefix == "" {
		opts.Prefix = "/regent"
	}
	if !strings.HasPrefix(opts.Prefix, "/") || strings.HasSuffix(opts.Prefix, "/") {
		return nil, fmt.Errorf("ha etcd: prefix %q must start with / and not end with /", opts.Prefix)
	}
	if opts.Framework == "" || strings.ContainsAny(opts.Framework, "/ ") {
		return nil, fmt.Errorf("ha etcd: framework name %q must be non-empty, without / or spaces", opts.Framework)
	}
	if opts.TTL == 0 {
		opts.TTL = 5 * time.Second
	}
	if opts.TTL < 2*time.Second || opts.TTL%time.Second != 0 {
		return nil, fmt.Errorf("ha etcd: TTL %v must be whole seconds, at least 2s (etcd leases count in seconds)", opts.TTL)
	}
	if opts.Margin == 0 {
		opts.Margin = opts.TTL / 4
	}
	if opts.Margin < 0 || opts.Margin >= opts.TTL*2/3 {
		return nil, fmt.Errorf("ha etcd: margin %v must be in (0, 2/3 of TTL %v): renewals come every TTL/3", opts.Margin, opts.TTL)
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	v, err := opts.Candidate.encode()
	if err != nil {
		return nil, err
	}
	return &EtcdElector{client: client, opts: opts, dir: opts.Prefix + "/" + opts.Framework + "/leader/",
		value: string(v), log: opts.Logger, terms: map[*Term]struct{}{}}, nil
}

// Campaign implements Elector.
func (e *EtcdElector) Campaign(ctx context.Context) (*Term, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	e.mu.Unlock()

	ttl := int64(e.opts.TTL / time.Second)
	sent := time.Now()
	grant, err := e.client.Grant(ctx, ttl)
	if err != nil {
		return nil, fmt.Errorf("ha etcd: grant lease: %w", err)
	}
	lease := grant.ID
	// The session's own keep-alive stream runs too; the renewal loop below
	// is what sets the local deadline.
	sessCtx, sessCancel := context.WithCancel(context.Background())
	sess, err := concurrency.NewSession(e.client, concurrency.WithLease(lease), concurrency.WithContext(sessCtx))
	if err != nil {
		sessCancel()
		e.revoke(lease)
		return nil, fmt.Errorf("ha etcd: session: %w", err)
	}
	r := &renewer{client: e.client, lease: lease, ttl: e.opts.TTL, margin: e.opts.Margin, last: sent,
		lost: make(chan struct{}), log: e.log}
	renewCtx, renewCancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.run(renewCtx, sess.Done())
	}()
	// cleanup stops renewing and revokes the lease; it runs once, when the
	// term ends for any reason, so that an abandoned term never keeps its
	// key alive (a lost term whose session kept renewing would block every
	// later campaign once the store came back).
	var cleanupOnce sync.Once
	cleanup := func() {
		cleanupOnce.Do(func() {
			renewCancel()
			wg.Wait()
			sessCancel()
			e.revoke(lease)
		})
	}

	// The campaign ends with the lease: a candidate whose session expired
	// while it waited must not win with a key that no longer exists.
	cctx, ccancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-r.lost:
			ccancel()
		case <-cctx.Done():
		}
	}()
	election := concurrency.NewElection(sess, strings.TrimSuffix(e.dir, "/")) // keys are e.dir + lease id
	err = election.Campaign(cctx, e.value)
	lostDuring := r.isLost()
	ccancel()
	if err != nil || lostDuring {
		cleanup()
		if err == nil || lostDuring {
			err = fmt.Errorf("%w: lease expired while campaigning", ErrLeadershipLost)
		}
		return nil, fmt.Errorf("ha etcd: campaign: %w", err)
	}
	key, rev := election.Key(), election.Rev()
	// Never infer leadership: check our own key exists, with our lease.
	get, err := e.client.Get(ctx, key)
	if err != nil || len(get.Kvs) != 1 || get.Kvs[0].CreateRevision != rev || clientv3.LeaseID(get.Kvs[0].Lease) != lease {
		cleanup()
		if err == nil {
			err = fmt.Errorf("%w: leader key %s missing after the campaign", ErrLeadershipLost, key)
		}
		return nil, fmt.Errorf("ha etcd: verify leadership: %w", err)
	}

	var term *Term
	term = newTerm(persist.Fence{Key: key, Revision: rev}, rev, func(rctx context.Context) error {
		defer e.forget(term)
		// Delete our key only if it is still ours (guarded by its create
		// revision), then revoke the lease.
		_, derr := e.client.Txn(rctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", rev)).
			Then(clientv3.OpDelete(key)).Commit()
		cleanup()
		if derr != nil {
			return fmt.Errorf("ha etcd: resign %s: %w", key, derr)
		}
		return nil
	})
	term.Self = e.opts.Candidate
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		term.lose(ErrClosed)
		cleanup()
		return nil, ErrClosed
	}
	e.terms[term] = struct{}{}
	e.mu.Unlock()
	// The term ends with the lease, or when our key disappears.
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		r.mu.Lock()
		r.extend = term.extend
		r.mu.Unlock()
		term.extend(r.deadline())
		e.watchTerm(term, r, key, get.Header.Revision)
		cleanup()
	}()
	e.log.Info("elected", zap.String("key", key), zap.Int64("revision", rev), zap.String("id", e.opts.Candidate.ID))
	return term, nil
}

// watchTerm ends term when the renewer gives up or the key is deleted.
func (e *EtcdElector) watchTerm(term *Term, r *renewer, key string, fromRev int64) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(context.Background()))
	defer cancel()
	wch := e.client.Watch(wctx, key, clientv3.WithRev(fromRev+1))
	for {
		select {
		case <-term.Done():
			return
		case <-r.lost:
			term.lose(fmt.Errorf("%w: %s", ErrLeadershipLost, r.reason()))
			return
		case resp, ok := <-wch:
			if !ok {
				// The watch ended (closed client); the renewer still guards
				// the deadline, so keep waiting for it.
				wch = nil
				continue
			}
			for _, ev := range resp.Events {
				if ev.Type == clientv3.EventTypeDelete {
					term.lose(fmt.Errorf("%w: leader key %s deleted", ErrLeadershipLost, key))
					return
				}
			}
		}
	}
}

func (e *EtcdElector) forget(t *Term) {
	e.mu.Lock()
	delete(e.terms, t)
	e.mu.Unlock()
}

func (e *EtcdElector) revoke(lease clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := e.client.Revoke(ctx, lease); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		e.log.Debug("revoke lease", zap.Error(err))
	}
}

// Observe implements Elector: the leader is the key under the election
// directory with the lowest create revision, re-read after every change
// in the directory (a watch sees deletions, which Election.Observe does
// not report).
func (e *EtcdElector) Observe(ctx context.Context) <-chan LeaderInfo {
	out := make(chan LeaderInfo, 1)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer close(out)
		var last *LeaderInfo
		for ctx.Err() == nil {
			rev, err := e.observeOnce(ctx, out, &last)
			if ctx.Err() != nil {
				return
			}
			e.log.Debug("observe leader: retrying", zap.Error(err), zap.Int64("revision", rev))
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return out
}

func (e *EtcdElector) observeOnce(ctx context.Context, out chan LeaderInfo, last **LeaderInfo) (int64, error) {
	read := func() (int64, error) {
		resp, err := e.client.Get(ctx, e.dir, clientv3.WithFirstCreate()...)
		if err != nil {
			return 0, err
		}
		var li LeaderInfo
		if len(resp.Kvs) > 0 {
			_ = json.Unmarshal(resp.Kvs[0].Value, &li.Candidate)
			li.Token = resp.Kvs[0].CreateRevision
		}
		if *last == nil || **last != li {
			*last = &li
			select {
			case <-out:
			default:
			}
			out <- li
		}
		return resp.Header.Revision, nil
	}
	rev, err := read()
	if err != nil {
		return 0, err
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for resp := range e.client.Watch(wctx, e.dir, clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
		if err := resp.Err(); err != nil {
			return rev, err
		}
		if rev, err = read(); err != nil {
			return rev, err
		}
	}
	return rev, errors.New("watch closed")
}

// Candidates implements Elector: the keys under the election directory in
// create-revision order.
func (e *EtcdElector) Candidates(ctx context.Context) ([]LeaderInfo, error) {
	resp, err := e.client.Get(ctx, e.dir, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("list candidates under %s: %w", e.dir, err)
	}
	out := make([]LeaderInfo, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		li := LeaderInfo{Token: kv.CreateRevision}
		if json.Unmarshal(kv.Value, &li.Candidate) != nil || li.ID == "" {
			li.Candidate = Candidate{ID: string(kv.Key)}
		}
		out = append(out, li)
	}
	return out, nil
}

// Close resigns every term (its key deleted if still its own, its lease
// revoked; at most 2 s each) and waits for the elector's goroutines.
func (e *EtcdElector) Close() error {
	e.mu.Lock()
	e.closed = true
	terms := make([]*Term, 0, len(e.terms))
	for t := range e.terms {
		terms = append(terms, t)
	}
	e.mu.Unlock()
	for _, t := range terms {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = t.Resign(ctx)
		cancel()
	}
	e.wg.Wait()
	return nil
}

// renewer keeps a lease alive with KeepAliveOnce every TTL/3 and closes
// lost when the lease is gone or its renewal is overdue by the local
// deadline: last successful send + TTL − margin.
type renewer struct {
	client *clientv3.Client
	lease  clientv3.LeaseID
	ttl    time.Duration
	margin time.Duration
	log    *zap.Logger

	mu     sync.Mutex
	last   time.Time
	extend func(time.Time) // tells the term its new deadline
	why    string
	lost   chan struct{}
	once   sync.Once
}

func (r *renewer) deadline() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last.Add(r.ttl - r.margin)
}

func (r *renewer) giveUp(why string) {
	r.once.Do(func() {
		r.mu.Lock()
		r.why = why
		r.mu.Unlock()
		r.log.Warn("leadership in doubt: ending the term", zap.String("reason", why))
		close(r.lost)
	})
}

func (r *renewer) isLost() bool {
	select {
	case <-r.lost:
		return true
	default:
		return false
	}
}

func (r *renewer) reason() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.why
}

func (r *renewer) run(ctx context.Context, sessionDone <-chan struct{}) {
	every := r.ttl / 3
	next := time.NewTimer(every)
	defer next.Stop()
	for {
		dl := time.Until(r.deadline())
		if dl <= 0 {
			r.giveUp("lease renewal overdue")
			return
		}
		deadline := time.NewTimer(dl)
		select {
		case <-ctx.Done():
			deadline.Stop()
			return
		case <-sessionDone:
			deadline.Stop()
			r.giveUp("etcd session ended")
			return
		case <-deadline.C:
			r.giveUp("lease renewal overdue")
			return
		case <-next.C:
			deadline.Stop()
			sent := time.Now()
			rctx, cancel := context.WithDeadline(ctx, r.deadline())
			_, err := r.client.KeepAliveOnce(rctx, r.lease)
			cancel()
			switch {
			case err == nil:
				r.mu.Lock()
				r.last = sent
				extend := r.extend
				r.mu.Unlock()
				if extend != nil {
					extend(r.deadline())
				}
				next.Reset(every)
			case errors.Is(err, rpctypes.ErrLeaseNotFound):
				r.giveUp("lease expired")
				return
			default:
				if ctx.Err() != nil {
					return
				}
				r.log.Debug("lease renewal failed; retrying", zap.Error(err))
				next.Reset(every / 4)
			}
		}
	}
}
