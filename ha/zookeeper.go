package ha

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/regent-sched/regent/persist"
)

const (
	// zkCandidatePrefix starts the name of every candidate znode:
	// candidate-<nonce>-<sequence>.
	zkCandidatePrefix = "candidate-"
	// zkCleanupGrace bounds how long a cancelled Campaign waits for its
	// znode to be deleted, and Close for each term's resignation; the
	// deletion goes on in the background after that.
	zkCleanupGrace = 2 * time.Second
	// zkRetryMin and zkRetryMax bound the pause between two attempts of a
	// request that failed because the connection was down.
	zkRetryMin = 50 * time.Millisecond
	zkRetryMax = time.Second
	// zkObserveRetry is the pause before Observe reads the leader again
	// after an error or the end of its watch.
	zkObserveRetry = 200 * time.Millisecond
	// zkMinAbdicateAfter keeps the leader's probes (every AbdicateAfter/4)
	// from flooding the server.
	zkMinAbdicateAfter = 100 * time.Millisecond
)

// ZKOptions configure a ZooKeeper elector.
type ZKOptions struct {
	// Prefix and Framework place the election under
	// <Prefix>/<Framework>/leader/ (default prefix "/regent"), next to the
	// state persist keeps for the same framework. Missing parents are
	// created as persistent znodes with ACL.
	Prefix    string
	Framework string
	Candidate Candidate
	// SessionTimeout is the session timeout the connection was made with
	// (zk.Connect's); required. The server must grant it: a server whose
	// maxSessionTimeout is lower grants less, and then AbdicateAfter may
	// come too late.
	SessionTimeout time.Duration
	// AbdicateAfter is how long the leader goes without an answer from
	// ZooKeeper before it ends its term (default SessionTimeout/2; at least
	// 100 ms and at most 3/4 of SessionTimeout). Shorter gaps are ridden
	// out; see ZKElector for why it must stay well below the session
	// timeout.
	AbdicateAfter time.Duration
	// ACL is given to every znode the elector creates; world:anyone with
	// all permissions if nil.
	ACL    []zk.ACL
	Logger *zap.Logger
}

// ZKElector elects a leader with ZooKeeper's leader-election recipe. Every
// Campaign creates a fresh EPHEMERAL|SEQUENTIAL znode
// <Prefix>/<Framework>/leader/candidate-<nonce>-<sequence> holding the
// Candidate as JSON. The candidate with the lowest sequence leads; every
// other one watches only its predecessor (no herd effect) and looks again
// when it goes. The term's fence is the leader's own znode and its czxid:
// the random nonce makes the path unique forever, even if the leader
// directory were deleted and its sequence started again, and the znode is
// never modified after its creation, so a commit guarded by Check(path,
// version 0) can never pass for another term. The token
// is the sequence number plus one, which grows with every candidate (the
// first candidate in a new directory gets 1).
//
// Timing: ZooKeeper expires a session when it has received nothing from
// the client for the session timeout S, counting from the last packet it
// received and rounding up to its next tick. A request the leader sent at
// time s and got answered therefore proves that the session, and with it
// the leader's znode, lives until s + S at least; nobody else can delete
// the znode, so nobody else can lead before then. While it leads, the
// elector probes every AbdicateAfter/4 — a sync, which the ensemble's
// leader must answer (an isolated follower goes on serving reads for
// syncLimit ticks), then Exists on its own znode — and ends the term at
// (send time of the last answered probe) + AbdicateAfter: S −
// AbdicateAfter before the server could expire the session. That margin
// is for the leader work to stop and, in an ensemble, for a follower to
// pass the session's last touch on to the ZooKeeper leader (within a
// tick). The deadline is not counted from the client's Disconnected event:
// go-zookeeper declares a connection dead only after 2/3 S of silence, so
// S/2 more would be past the expiry; and "Expired" is reported only once
// the client reaches a server again (ZOOKEEPER-4508), far too late. A blip
// shorter than about 3/4 of AbdicateAfter does not end the term: the
// probes sent during it are answered when it ends and count from when
// they were sent. A paused process (SIGSTOP) wakes up past its deadline
// and ends its term before it believes a later answer; its next store
// write is fenced anyway.
//
// A term also ends when its znode is deleted, when the session expires or
// is replaced, and when the connection is closed. After an expiry
// go-zookeeper reconnects with a new session and does not recreate
// ephemeral znodes (go-zookeeper/zk#90); the elector recreates nothing
// either: the next Campaign creates a new znode in the new session. A
// lost term keeps its znode until Resign (after the leader work has
// returned) or the end of the session, so that nobody else leads while the
// old work may still run.
type ZKElector struct {
	conn  *zk.Conn
	opts  ZKOptions
	dir   string // <prefix>/<framework>/leader
	value []byte
	acl   []zk.ACL
	log   *zap.Logger

	ctx       context.Context // ends when Close stops the goroutines
	cancel    context.CancelFunc
	connDone  chan struct{} // closed when the connection's events end: conn.Close
	closeDone chan struct{} // closed when Close has returned

	mu       sync.Mutex
	closed   bool            // no new campaigns, observers or terms
	stopping bool            // no new goroutines: Close is waiting for them
	terms    map[*Term]int64 // the session each term's znode belongs to
	wg       sync.WaitGroup  // every goroutine of the elector
}

// NewZooKeeper returns an elector over conn, whose session it uses for its
// znodes. conn stays the caller's, to share (persist's store may use it
// too) and to close after the elector. events must be the channel
// zk.Connect returned with conn: the elector reads it, and nobody else
// may, from now until Close, to notice expired and replaced sessions and a
// closed connection at once.
func NewZooKeeper(conn *zk.Conn, events <-chan zk.Event, opts ZKOptions) (*ZKElector, error) {
	if conn == nil {
		return nil, errors.New("ha zookeeper: no connection")
	}
	if events == nil {
		return nil, errors.New("ha zookeeper: no event channel: pass the one zk.Connect returned with the connection")
	}
	if opts.Prefix == "" {
		opts.Prefix = "/regent"
	}
	if !strings.HasPrefix(opts.Prefix, "/") || strings.HasSuffix(opts.Prefix, "/") || strings.Contains(opts.Prefix, "//") {
		return nil, fmt.Errorf("ha zookeeper: prefix %q must start with / and not end with / nor hold //", opts.Prefix)
	}
	if opts.Framework == "" || strings.ContainsAny(opts.Framework, "/ ") {
		return nil, fmt.Errorf("ha zookeeper: framework name %q must be non-empty, without / or spaces", opts.Framework)
	}
	if opts.SessionTimeout <= 0 {
		return nil, errors.New("ha zookeeper: SessionTimeout is required: the session timeout the connection was made with")
	}
	if opts.AbdicateAfter == 0 {
		opts.AbdicateAfter = opts.SessionTimeout / 2
	}
	if opts.AbdicateAfter < zkMinAbdicateAfter || opts.AbdicateAfter > opts.SessionTimeout*3/4 {
		return nil, fmt.Errorf("ha zookeeper: AbdicateAfter %v must be in [%v, 3/4 of the session timeout %v]: the term must end before the session can expire",
			opts.AbdicateAfter, zkMinAbdicateAfter, opts.SessionTimeout)
	}
	acl := opts.ACL
	if acl == nil {
		acl = zk.WorldACL(zk.PermAll)
	}
	if len(acl) == 0 {
		return nil, errors.New("ha zookeeper: empty ACL")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	v, err := opts.Candidate.encode()
	if err != nil {
		return nil, err
	}
	e := &ZKElector{conn: conn, opts: opts, dir: opts.Prefix + "/" + opts.Framework + "/leader", value: v,
		acl: acl, log: opts.Logger, connDone: make(chan struct{}), closeDone: make(chan struct{}), terms: map[*Term]int64{}}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.spawn(func() { e.watchSession(events) })
	return e, nil
}

// spawn runs f in a goroutine that Close waits for, unless Close is
// already waiting.
func (e *ZKElector) spawn(f func()) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopping {
		return false
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		f()
	}()
	return true
}

func (e *ZKElector) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// watchSession follows the connection's session events until Close or
// until the connection is closed.
func (e *ZKElector) watchSession(events <-chan zk.Event) {
	connected := true // a new connection comes with a session
	for {
		select {
		case <-e.ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				close(e.connDone)
				e.loseTerms(func(int64) bool { return true }, "the ZooKeeper connection was closed")
				return
			}
			if ev.Type != zk.EventSession {
				continue
			}
			switch ev.State {
			case zk.StateDisconnected:
				if connected {
					e.log.Warn("ZooKeeper connection lost; a term ends if it stays lost",
						zap.String("server", ev.Server), zap.Duration("abdicate_after", e.opts.AbdicateAfter))
				}
				connected = false
			case zk.StateExpired:
				e.log.Warn("ZooKeeper session expired", zap.String("server", ev.Server))
				e.loseTerms(func(int64) bool { return true }, "the ZooKeeper session expired")
			case zk.StateHasSession:
				connected = true
				id := e.conn.SessionID()
				e.log.Info("ZooKeeper session established", zap.String("server", ev.Server), zap.Int64("session", id))
				e.loseTerms(func(s int64) bool { return s != id }, "the ZooKeeper session was replaced")
			}
		}
	}
}

// loseTerms ends the terms whose session matches.
func (e *ZKElector) loseTerms(match func(session int64) bool, why string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for t, s := range e.terms {
		if match(s) && t.Err() == nil {
			e.log.Warn("leadership lost: ending the term", zap.String("node", t.Fence.Key), zap.String("reason", why))
			t.lose(fmt.Errorf("%w: %s", ErrLeadershipLost, why))
		}
	}
}

func (e *ZKElector) forget(t *Term) {
	e.mu.Lock()
	delete(e.terms, t)
	e.mu.Unlock()
}

// Campaign implements Elector. It returns when this replica leads, when ctx
// ends (its znode is deleted first: Campaign waits up to 2 s for that, then
// leaves it to a goroutine of the elector), or when its znode is gone — the
// session expired, or someone deleted it — with an error wrapping
// ErrLeadershipLost: a candidate without a znode never waits on. While
// ZooKeeper is unreachable it waits, keeping its place if the session
// survives.
func (e *ZKElector) Campaign(ctx context.Context) (*Term, error) {
	if e.isClosed() {
		return nil, ErrClosed
	}
	// The campaign runs in a goroutine of the elector so that ctx ends it
	// at once even while a request waits for a dead connection.
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(e.ctx, cancel)
	defer stop()
	type result struct {
		term *Term
		err  error
	}
	res := make(chan result, 1)
	var mu sync.Mutex
	abandoned := false
	if !e.spawn(func() {
		term, err := e.campaign(cctx)
		mu.Lock()
		gone := abandoned
		if !gone {
			res <- result{term, err}
		}
		mu.Unlock()
		if gone && term != nil {
			e.resignQuietly(term)
		}
	}) {
		return nil, ErrClosed
	}
	select {
	case r := <-res:
		return r.term, r.err
	case <-ctx.Done():
	}
	cancel()
	grace := time.NewTimer(zkCleanupGrace)
	defer grace.Stop()
	select {
	case r := <-res:
		if r.term != nil {
			e.resignQuietly(r.term)
		}
	case <-grace.C:
		mu.Lock()
		abandoned = true
		mu.Unlock()
		select {
		case r := <-res:
			if r.term != nil {
				e.resignQuietly(r.term)
			}
		default:
			e.log.Warn("cancelled campaign: its znode is deleted in the background")
		}
	}
	return nil, fmt.Errorf("ha zookeeper: campaign: %w", context.Cause(ctx))
}

func (e *ZKElector) resignQuietly(t *Term) {
	ctx, cancel := context.WithTimeout(context.Background(), zkCleanupGrace)
	defer cancel()
	if err := t.Resign(ctx); err != nil {
		e.log.Debug("resign an unwanted term", zap.Error(err))
	}
}

// campaign creates a candidate znode, waits until it leads and returns the
// term; on failure it deletes the znode.
func (e *ZKElector) campaign(ctx context.Context) (*Term, error) {
	nonce := newNonce()
	start := e.conn.SessionID() // 0 while there is none: then the first one
	node, uncertain, err := e.create(ctx, nonce, start)
	// The session that answered the create, or a later one (the znode then
	// went with its session): never an earlier one.
	session := e.conn.SessionID()
	if err == nil && start != 0 && session != start {
		err = zkSessionLost()
	}
	if err != nil {
		if node != "" || uncertain {
			_ = e.deleteNode(node, nonce, session)
		}
		return nil, e.campaignErr(ctx, err)
	}
	term, err := e.await(ctx, node, session)
	if err != nil {
		if derr := e.deleteNode(node, nonce, session); derr != nil {
			e.log.Warn("failed campaign: could not delete its znode; it goes with the session", zap.String("node", node), zap.Error(derr))
		}
		return nil, e.campaignErr(ctx, err)
	}
	return term, nil
}

func zkSessionLost() error {
	return fmt.Errorf("%w: the ZooKeeper session ended while campaigning", ErrLeadershipLost)
}

func (e *ZKElector) campaignErr(ctx context.Context, err error) error {
	if ctx.Err() != nil && e.ctx.Err() != nil {
		return ErrClosed
	}
	return fmt.Errorf("ha zookeeper: campaign: %w", err)
}

// create makes the candidate znode in session start (any if 0). A create
// whose connection failed may or may not have happened: the znode is then
// looked for by its nonce (ZooKeeper's "protected" create). uncertain
// tells that a znode may have been left behind by a failed create.
func (e *ZKElector) create(ctx context.Context, nonce string, start int64) (node string, uncertain bool, err error) {
	base := e.dir + "/" + zkCandidatePrefix + nonce + "-"
	var b zkBackoff
	for dirTries := 0; ; {
		if start != 0 && e.conn.SessionID() != start {
			return "", uncertain, zkSessionLost()
		}
		created, err := e.conn.Create(base, e.value, zk.FlagEphemeral|zk.FlagSequence, e.acl)
		switch {
		case err == nil:
			return created, false, nil
		case errors.Is(err, zk.ErrNoNode) && dirTries < 3:
			dirTries++
			err = e.ensureDir()
		case errors.Is(err, zk.ErrConnectionClosed):
			uncertain = true
			found, ferr := e.lookFor(ctx, &b, nonce, start)
			if ferr != nil {
				return "", true, ferr
			}
			if found != "" {
				return found, false, nil
			}
			continue // it was not created
		}
		if err != nil {
			if err := e.again(ctx, &b, "create "+base, err); err != nil {
				return "", uncertain, err
			}
		}
	}
}

// lookFor finds the znode of a create whose answer was lost, by its nonce,
// once the connection is back.
func (e *ZKElector) lookFor(ctx context.Context, b *zkBackoff, nonce string, start int64) (string, error) {
	e.log.Debug("the answer to a create was lost: looking for the znode", zap.String("nonce", nonce))
	for {
		if start != 0 && e.conn.SessionID() != start {
			return "", zkSessionLost()
		}
		found, err := e.find(nonce)
		if err == nil {
			return found, nil
		}
		if err := e.again(ctx, b, "look for candidate "+nonce, err); err != nil {
			return "", err
		}
	}
}

// ensureDir creates the leader directory and its missing parents.
func (e *ZKElector) ensureDir() error {
	p := ""
	for _, part := range strings.Split(strings.TrimPrefix(e.dir, "/"), "/") {
		p += "/" + part
		ok, _, err := e.conn.Exists(p)
		if err != nil {
			return fmt.Errorf("exists %s: %w", p, err)
		}
		if ok {
			continue
		}
		if _, err := e.conn.Create(p, nil, 0, e.acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("create %s: %w", p, err)
		}
	}
	return nil
}

// find returns the path of the candidate znode with nonce, or "".
func (e *ZKElector) find(nonce string) (string, error) {
	names, _, err := e.conn.Children(e.dir)
	if errors.Is(err, zk.ErrNoNode) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	for _, name := range names {
		if c, ok := parseCandidate(name); ok && c.nonce == nonce {
			return e.dir + "/" + name, nil
		}
	}
	return "", nil
}

// await waits until node has the lowest sequence, verifies it still
// exists in this session, and starts the term.
func (e *ZKElector) await(ctx context.Context, node string, session int64) (*Term, error) {
	self, _ := parseCandidate(path.Base(node))
	vanished := fmt.Errorf("%w: candidate znode %s vanished (session expired or znode deleted)", ErrLeadershipLost, node)
	if err := e.waitTurn(ctx, node, self, session, vanished); err != nil {
		return nil, err
	}
	return e.startTerm(ctx, node, self, session, vanished)
}

// waitTurn returns when node has the lowest sequence. It watches only its
// predecessor, and its own znode: a deleted candidate must not wait on.
func (e *ZKElector) waitTurn(ctx context.Context, node string, self zkCandidate, session int64, vanished error) error {
	var (
		b   zkBackoff
		own <-chan zk.Event
	)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.conn.SessionID() != session {
			return vanished
		}
		names, _, err := e.conn.Children(e.dir)
		if err != nil {
			if err := e.again(ctx, &b, "list "+e.dir, err); err != nil {
				return err
			}
			continue
		}
		b = zkBackoff{}
		pred, present := e.predecessor(names, self)
		switch {
		case !present:
			return vanished
		case pred == "":
			return nil
		}
		if own == nil {
			if _, _, own, err = e.conn.GetW(node); errors.Is(err, zk.ErrNoNode) {
				return vanished
			}
			if err != nil {
				if err := e.again(ctx, &b, "watch "+node, err); err != nil {
					return err
				}
				continue
			}
		}
		// GetW rather than ExistsW: it sets no watch on a predecessor that
		// is already gone, which would never fire.
		_, _, watch, err := e.conn.GetW(e.dir + "/" + pred)
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			if err := e.again(ctx, &b, "watch "+pred, err); err != nil {
				return err
			}
			continue
		}
		e.log.Debug("waiting for the predecessor", zap.String("node", node), zap.String("predecessor", pred))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-watch:
		case <-own:
			own = nil
		}
	}
}

// startTerm checks — never inferring leadership — that node still exists,
// in this session, as the ensemble's leader sees it (see ask), watches it,
// and starts the term.
func (e *ZKElector) startTerm(ctx context.Context, node string, self zkCandidate, session int64, vanished error) (*Term, error) {
	var (
		b     zkBackoff
		sent  time.Time
		st    *zk.Stat
		watch <-chan zk.Event
	)
	for {
		var err error
		sent = time.Now()
		if _, err = e.conn.Sync(node); err == nil || errors.Is(err, zk.ErrNoNode) {
			_, st, watch, err = e.conn.GetW(node)
		}
		if errors.Is(err, zk.ErrNoNode) {
			return nil, vanished
		}
		if err == nil {
			break
		}
		if err := e.again(ctx, &b, "verify "+node, err); err != nil {
			return nil, err
		}
	}
	if st.EphemeralOwner != session || e.conn.SessionID() != session {
		return nil, vanished
	}
	var term *Term
	// The token is the sequence number plus one, so that no term has token 0
	// (which status pages show as "not leading").
	term = newTerm(persist.Fence{Key: node, Revision: st.Czxid}, self.seq+1, func(rctx context.Context) error {
		defer e.forget(term)
		return e.release(rctx, node, session)
	})
	term.Self = e.opts.Candidate
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		term.lose(ErrClosed)
		return nil, ErrClosed
	}
	e.terms[term] = session
	e.wg.Add(1) // closed is false, so stopping is too
	go func() {
		defer e.wg.Done()
		e.keep(term, node, st.Czxid, session, sent, watch)
	}()
	e.log.Info("elected", zap.String("node", node), zap.Int64("czxid", st.Czxid), zap.Int64("token", self.seq),
		zap.String("id", e.opts.Candidate.ID))
	return term, nil
}

// predecessor returns the candidate just below self among names ("" if
// self is the lowest), and whether self is among them. Other znodes with
// self's nonce (left by a create whose answer was lost) are deleted.
func (e *ZKElector) predecessor(names []string, self zkCandidate) (pred string, present bool) {
	var best int64 = -1
	for _, name := range names {
		c, ok := parseCandidate(name)
		switch {
		case !ok:
		case c.name == self.name:
			present = true
		case c.nonce == self.nonce:
			if err := e.conn.Delete(e.dir+"/"+name, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
				e.log.Debug("delete a duplicate candidate znode", zap.String("node", name), zap.Error(err))
			}
		case c.seq < self.seq && c.seq > best:
			best, pred = c.seq, name
		}
	}
	return pred, present
}

// keep ends term when ZooKeeper has not answered for AbdicateAfter, or
// when its znode goes.
func (e *ZKElector) keep(term *Term, node string, czxid, session int64, answered time.Time, watch <-chan zk.Event) {
	abdicate := e.opts.AbdicateAfter
	results := make(chan zkProbe)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.probe(node, stop, results)
	}()
	defer func() {
		close(stop)
		wg.Wait()
	}()
	lose := func(format string, args ...any) {
		why := fmt.Sprintf(format, args...)
		e.log.Warn("leadership in doubt: ending the term", zap.String("node", node), zap.String("reason", why))
		term.lose(fmt.Errorf("%w: %s", ErrLeadershipLost, why))
	}
	term.extend(answered.Add(abdicate))
	deadline := time.NewTimer(time.Until(answered.Add(abdicate)))
	defer deadline.Stop()
	for {
		select {
		case <-term.Done():
			return
		case <-e.ctx.Done():
			term.lose(ErrClosed)
			return
		case <-deadline.C:
			lose("no answer from ZooKeeper for %v; the session may expire", abdicate)
			return
		case ev := <-watch:
			switch ev.Type {
			case zk.EventNodeDeleted:
				lose("znode %s deleted", node)
				return
			case zk.EventNotWatching:
				lose("watch on %s ended: %v", node, ev.Err)
				return
			}
			watch = nil // its data changed; the probes still notice a deletion
		case p := <-results:
			if !time.Now().Before(answered.Add(abdicate)) {
				lose("no answer from ZooKeeper for %v; the session may expire", abdicate)
				return
			}
			switch {
			case p.err == nil && p.exists && p.stat.Czxid == czxid && p.stat.EphemeralOwner == session && e.conn.SessionID() == session:
				if p.sent.After(answered) {
					answered = p.sent
					term.extend(answered.Add(abdicate))
					deadline.Reset(time.Until(answered.Add(abdicate)))
				}
			case p.err == nil:
				lose("znode %s is gone or no longer this session's", node)
				return
			case errors.Is(p.err, zk.ErrSessionExpired):
				lose("the ZooKeeper session expired")
				return
			case errors.Is(p.err, zk.ErrClosing):
				lose("the ZooKeeper connection was closed")
				return
			default:
				e.log.Debug("probe failed", zap.String("node", node), zap.Error(p.err))
			}
		}
	}
}

type zkProbe struct {
	sent   time.Time
	exists bool
	stat   *zk.Stat
	err    error
}

// probe asks for node every AbdicateAfter/4 and reports each answer with
// the time its first request was sent.
func (e *ZKElector) probe(node string, stop <-chan struct{}, out chan<- zkProbe) {
	tick := time.NewTicker(e.opts.AbdicateAfter / 4)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		sent := time.Now()
		ok, st, err := e.ask(node)
		select {
		case out <- zkProbe{sent: sent, exists: ok, stat: st, err: err}:
		case <-stop:
			return
		}
	}
}

// ask syncs with the ensemble's leader, then reads node. An answered sync
// means the server we talk to still follows a leader with a quorum: an
// isolated follower serves reads until it notices (syncLimit ticks) while
// the leader may already be expiring our session.
func (e *ZKElector) ask(node string) (bool, *zk.Stat, error) {
	if _, err := e.conn.Sync(node); err != nil && !errors.Is(err, zk.ErrNoNode) {
		return false, nil, err
	}
	return e.conn.Exists(node)
}

// release deletes a term's znode, waiting for it until ctx ends; after
// that a goroutine of the elector goes on trying.
func (e *ZKElector) release(ctx context.Context, node string, session int64) error {
	done := make(chan error, 1)
	if !e.spawn(func() { done <- e.deleteNode(node, "", session) }) {
		return e.deleteNode(node, "", session) // Close is waiting: one attempt, here
	}
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("ha zookeeper: resign: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ha zookeeper: resign: delete %s: %w (still trying in the background)", node, ctx.Err())
	}
}

// deleteNode deletes a candidate znode of session, found by its path or
// by its nonce, retrying while the connection is down. It gives up when
// the session has changed or the connection was closed (the znode goes
// with its session), or when Close stops the elector.
func (e *ZKElector) deleteNode(node, nonce string, session int64) error {
	wait := zkRetryMin
	for {
		if e.conn.SessionID() != session {
			return nil
		}
		var err error
		if node == "" {
			var found string
			if found, err = e.find(nonce); err == nil {
				if found == "" {
					return nil
				}
				node = found
			}
		}
		if err == nil {
			err = e.conn.Delete(node, -1)
		}
		if err == nil || errors.Is(err, zk.ErrNoNode) {
			e.log.Debug("deleted candidate znode", zap.String("node", node))
			return nil
		}
		if !zkTransient(err) {
			return fmt.Errorf("delete %s: %w", node, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-e.connDone:
			t.Stop()
			return nil
		case <-e.ctx.Done():
			t.Stop()
			return fmt.Errorf("delete %s: %w (elector closed; the znode goes with its session)", node, err)
		case <-t.C:
		}
		wait = min(2*wait, zkRetryMax)
	}
}

// Observe implements Elector: the leader is the candidate znode with the
// lowest sequence, read again after every change among the candidates
// (a children watch, which sees deletions). It goes on across reconnects
// and new sessions. The channel is closed when ctx ends or at Close.
func (e *ZKElector) Observe(ctx context.Context) <-chan LeaderInfo {
	out := make(chan LeaderInfo, 1)
	octx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(e.ctx, cancel)
	if e.isClosed() || !e.spawn(func() {
		defer close(out)
		defer cancel()
		defer stop()
		e.observe(octx, out)
	}) {
		stop()
		cancel()
		close(out)
	}
	return out
}

func (e *ZKElector) observe(ctx context.Context, out chan LeaderInfo) {
	var last *LeaderInfo
	for ctx.Err() == nil {
		li, watch, err := e.readLeader()
		if err == nil {
			if last == nil || *last != li {
				last = &li
				select {
				case <-out:
				default:
				}
				out <- li
			}
			select {
			case <-ctx.Done():
				return
			case ev := <-watch:
				if ev.Type != zk.EventNotWatching {
					continue
				}
				err = fmt.Errorf("watch ended: %w", ev.Err)
			}
		}
		e.log.Debug("observe leader: retrying", zap.Error(err))
		t := time.NewTimer(zkObserveRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Candidates implements Elector: the candidate znodes in sequence order.
func (e *ZKElector) Candidates(ctx context.Context) ([]LeaderInfo, error) {
	names, _, err := e.conn.Children(e.dir)
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list candidates under %s: %w", e.dir, err)
	}
	var cs []zkCandidate
	for _, name := range names {
		if c, ok := parseCandidate(name); ok {
			cs = append(cs, c)
		}
	}
	sortCandidates(cs)
	out := make([]LeaderInfo, 0, len(cs))
	for _, c := range cs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		data, _, err := e.conn.Get(e.dir + "/" + c.name)
		if errors.Is(err, zk.ErrNoNode) {
			continue // gone since the listing
		}
		if err != nil {
			return nil, fmt.Errorf("read candidate %s/%s: %w", e.dir, c.name, err)
		}
		li := LeaderInfo{Token: c.seq + 1}
		if json.Unmarshal(data, &li.Candidate) != nil || li.ID == "" {
			li.Candidate = Candidate{ID: c.name}
		}
		out = append(out, li)
	}
	return out, nil
}

// readLeader reads the current leader and returns a watch that fires on
// the next change.
func (e *ZKElector) readLeader() (LeaderInfo, <-chan zk.Event, error) {
	for {
		names, _, watch, err := e.conn.ChildrenW(e.dir)
		if errors.Is(err, zk.ErrNoNode) {
			ok, _, w, err := e.conn.ExistsW(e.dir)
			if err != nil {
				return LeaderInfo{}, nil, err
			}
			if ok {
				continue // created meanwhile
			}
			return LeaderInfo{}, w, nil
		}
		if err != nil {
			return LeaderInfo{}, nil, err
		}
		var lowest []zkCandidate
		for _, name := range names {
			if c, ok := parseCandidate(name); ok {
				lowest = append(lowest, c)
			}
		}
		sortCandidates(lowest)
		for _, c := range lowest {
			data, _, err := e.conn.Get(e.dir + "/" + c.name)
			if errors.Is(err, zk.ErrNoNode) {
				continue // deleted since the listing; the watch fires too
			}
			if err != nil {
				return LeaderInfo{}, nil, err
			}
			li := LeaderInfo{Token: c.seq + 1}
			if json.Unmarshal(data, &li.Candidate) != nil || li.ID == "" {
				li.Candidate = Candidate{ID: c.name}
			}
			return li, watch, nil
		}
		return LeaderInfo{}, watch, nil
	}
}

// Close ends every term (resigning it: its znode is deleted), ends
// campaigns and observers, and waits for the elector's goroutines — also
// for a request in flight, which the client library ends at the latest
// when it gives up on the connection. It does not close the connection;
// closing it afterwards removes whatever znode could not be deleted.
func (e *ZKElector) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		<-e.closeDone
		return nil
	}
	e.closed = true
	defer close(e.closeDone)
	terms := make([]*Term, 0, len(e.terms))
	for t := range e.terms {
		terms = append(terms, t)
	}
	e.mu.Unlock()
	for _, t := range terms {
		ctx, cancel := context.WithTimeout(context.Background(), zkCleanupGrace)
		if err := t.Resign(ctx); err != nil {
			e.log.Warn("close: resign", zap.String("node", t.Fence.Key), zap.Error(err))
		}
		cancel()
	}
	e.mu.Lock()
	e.stopping = true
	e.mu.Unlock()
	e.cancel()
	e.wg.Wait()
	return nil
}

// again decides what follows a failed request: nil to try it again after a
// pause (the connection was down), or the error to give up with.
func (e *ZKElector) again(ctx context.Context, b *zkBackoff, what string, err error) error {
	if !zkTransient(err) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return e.pause(ctx, b, err)
}

// pause waits before retrying a request that failed with err because the
// connection was down. The client library reconnects, with the same
// session or, after an expiry, a new one, which the callers check for. It
// fails when ctx ends or the connection was closed.
func (e *ZKElector) pause(ctx context.Context, b *zkBackoff, err error) error {
	b.wait = max(b.wait, zkRetryMin)
	t := time.NewTimer(b.wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-e.connDone:
		return fmt.Errorf("connection closed: %w", err)
	case <-t.C:
	}
	b.wait = min(2*b.wait, zkRetryMax)
	return nil
}

type zkBackoff struct{ wait time.Duration }

// zkTransient tells errors of a connection that is down but may come back
// with the same session.
func zkTransient(err error) bool {
	return errors.Is(err, zk.ErrConnectionClosed) || errors.Is(err, zk.ErrNoServer) || errors.Is(err, zk.ErrSessionMoved)
}

type zkCandidate struct {
	name  string
	nonce string
	seq   int64
}

// parseCandidate parses candidate-<nonce>-<sequence>; ZooKeeper writes the
// sequence as ten digits.
func parseCandidate(name string) (zkCandidate, bool) {
	rest, ok := strings.CutPrefix(name, zkCandidatePrefix)
	i := strings.LastIndexByte(rest, '-')
	if !ok || i < 1 || len(rest)-i-1 != 10 {
		return zkCandidate{}, false
	}
	seq, err := strconv.ParseInt(rest[i+1:], 10, 64)
	if err != nil || seq < 0 {
		return zkCandidate{}, false
	}
	return zkCandidate{name: name, nonce: rest[:i], seq: seq}, true
}

func sortCandidates(cs []zkCandidate) {
	slices.SortFunc(cs, func(a, b zkCandidate) int { return cmp.Compare(a.seq, b.seq) })
}

func newNonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
