package ha

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/regent-sched/regent/integration/faultproxy"
	"github.com/regent-sched/regent/integration/testserver"
)

const zkLeaderDir = "/regent/fw/leader"

// zkElector returns an elector for candidate id on a connection of its own
// with the given session timeout; it is closed before the connection.
func zkElector(t *testing.T, z *testserver.ZooKeeper, id string, session time.Duration) (*ZKElector, *zk.Conn) {
	t.Helper()
	conn, events := z.ConnEvents(t, session)
	e, err := NewZooKeeper(conn, events, ZKOptions{Framework: "fw", Candidate: Candidate{ID: id, Address: id + ":8080"},
		SessionTimeout: session, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, conn
}

// zkElectorAt is like zkElector for a connection of zkDial's.
func zkElectorAt(t *testing.T, servers []string, id string, session time.Duration) (*ZKElector, *zk.Conn) {
	t.Helper()
	conn, events := zkDial(t, servers, session)
	e, err := NewZooKeeper(conn, events, ZKOptions{Framework: "fw", Candidate: Candidate{ID: id, Address: id + ":8080"},
		SessionTimeout: session, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, conn
}

func zkCampaign(t *testing.T, e *ZKElector, d time.Duration) *Term {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	term, err := e.Campaign(ctx)
	if err != nil {
		t.Fatalf("campaign: %v", err)
	}
	return term
}

type zkResult struct {
	term *Term
	err  error
}

func zkCampaignAsync(ctx context.Context, e *ZKElector) <-chan zkResult {
	ch := make(chan zkResult, 1)
	go func() {
		term, err := e.Campaign(ctx)
		ch <- zkResult{term, err}
	}()
	return ch
}

// zkWon waits for an asynchronous campaign to win.
func zkWon(t *testing.T, ch <-chan zkResult, d time.Duration, what string) *Term {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("%s: campaign: %v", what, r.err)
		}
		return r.term
	case <-time.After(d):
		t.Fatalf("%s: no leader after %v", what, d)
		return nil
	}
}

func zkNotWon(t *testing.T, ch <-chan zkResult, d time.Duration, what string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("%s: campaign returned (%v, %v) while another leads", what, r.term != nil, r.err)
	case <-time.After(d):
	}
}

func zkChildren(t *testing.T, conn *zk.Conn) []string {
	t.Helper()
	names, _, err := conn.Children(zkLeaderDir)
	if err != nil && !errors.Is(err, zk.ErrNoNode) {
		t.Fatalf("list %s: %v", zkLeaderDir, err)
	}
	slices.Sort(names)
	return names
}

func zkWaitChildren(t *testing.T, conn *zk.Conn, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		names := zkChildren(t, conn)
		if len(names) == n {
			return names
		}
		if time.Now().After(deadline) {
			t.Fatalf("candidates %v, want %d", names, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// zkWaitDone waits for a term to end and returns how long that took.
func zkWaitDone(t *testing.T, term *Term, d time.Duration, what string) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case <-term.Done():
		return time.Since(start)
	case <-time.After(d):
		t.Fatalf("%s: term still alive after %v", what, d)
		return 0
	}
}

func zkObserved(t *testing.T, obs <-chan LeaderInfo, want LeaderInfo) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	var last LeaderInfo
	for {
		select {
		case li, ok := <-obs:
			if !ok {
				t.Fatalf("observer closed while waiting for %+v", want)
			}
			if li == want {
				return
			}
			last = li
		case <-deadline:
			t.Fatalf("observer never reported %+v (last %+v)", want, last)
		}
	}
}

func TestZooKeeperOptionsValidation(t *testing.T) {
	z := testserver.StartZooKeeper(t)
	conn, events := z.ConnEvents(t, 2*time.Second)
	s := 2 * time.Second
	for name, o := range map[string]ZKOptions{
		"no framework":      {SessionTimeout: s},
		"slash":             {Framework: "a/b", SessionTimeout: s},
		"prefix":            {Framework: "fw", Prefix: "regent", SessionTimeout: s},
		"prefix slash":      {Framework: "fw", Prefix: "/regent/", SessionTimeout: s},
		"no session":        {Framework: "fw"},
		"abdicate too late": {Framework: "fw", SessionTimeout: s, AbdicateAfter: s * 4 / 5},
		"abdicate too soon": {Framework: "fw", SessionTimeout: s, AbdicateAfter: 10 * time.Millisecond},
		"abdicate negative": {Framework: "fw", SessionTimeout: s, AbdicateAfter: -time.Second},
		"empty ACL":         {Framework: "fw", SessionTimeout: s, ACL: []zk.ACL{}},
	} {
		if e, err := NewZooKeeper(conn, events, o); err == nil {
			e.Close()
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewZooKeeper(nil, events, ZKOptions{Framework: "fw", SessionTimeout: s}); err == nil {
		t.Error("nil connection accepted")
	}
	if _, err := NewZooKeeper(conn, nil, ZKOptions{Framework: "fw", SessionTimeout: s}); err == nil {
		t.Error("nil events accepted")
	}
	e, err := NewZooKeeper(conn, events, ZKOptions{Framework: "fw", SessionTimeout: s})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.opts.AbdicateAfter != s/2 || e.dir != zkLeaderDir || e.opts.Candidate.ID == "" {
		t.Fatalf("defaults: %+v, dir %s", e.opts, e.dir)
	}
}

// One candidate wins; its fence is its own znode and czxid, and a plain
// multi guarded by Check(fence.Key, -1) — what persist's store does —
// passes during the term and fails after it.
func TestZooKeeperSingleCandidateWinsAndFences(t *testing.T) {
	z := testserver.StartZooKeeper(t)
	e, conn := zkElector(t, z, "a", 2*time.Second)
	term := zkCampaign(t, e, 5*time.Second)
	if term.Err() != nil {
		t.Fatalf("fresh term ended: %v", term.Err())
	}
	name, ok := strings.CutPrefix(term.Fence.Key, zkLeaderDir+"/")
	c, parsed := parseCandidate(name)
	if !ok || !parsed || !strings.HasPrefix(name, "candidate-") || term.Token != c.seq+1 {
		t.Fatalf("fence %+v, token %d", term.Fence, term.Token)
	}
	data, st, err := conn.Get(term.Fence.Key)
	if err != nil {
		t.Fatal(err)
	}
	var cand Candidate
	if err := json.Unmarshal(data, &cand); err != nil || cand != (Candidate{ID: "a", Address: "a:8080"}) {
		t.Fatalf("znode holds %q (%v)", data, err)
	}
	if st.Czxid != term.Fence.Revision || st.EphemeralOwner != conn.SessionID() {
		t.Fatalf("czxid %d owner %d, fence %+v session %d", st.Czxid, st.EphemeralOwner, term.Fence, conn.SessionID())
	}
	obs := e.Observe(t.Context())
	zkObserved(t, obs, LeaderInfo{Candidate: cand, Token: term.Token})

	// Fencing with a plain multi.
	other := z.Conn(t)
	if _, err := other.Create("/data", []byte("0"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	write := func(v string) error {
		_, err := other.Multi(&zk.CheckVersionRequest{Path: term.Fence.Key, Version: -1},
			&zk.SetDataRequest{Path: "/data", Data: []byte(v), Version: -1})
		return err
	}
	if err := write("1"); err != nil {
		t.Fatalf("fenced write in the term: %v", err)
	}
	if err := term.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := term.Resign(context.Background()); err != nil {
		t.Fatalf("second resign: %v", err)
	}
	if !errors.Is(term.Err(), ErrResigned) {
		t.Fatalf("term ended with %v", term.Err())
	}
	if err := write("2"); err == nil {
		t.Fatal("fenced write succeeded after the term")
	}
	if got, _, _ := other.Get("/data"); string(got) != "1" {
		t.Fatalf("/data = %q", got)
	}
	if names := zkChildren(t, other); len(names) != 0 {
		t.Fatalf("znodes left after resign: %v", names)
	}
	zkObserved(t, obs, LeaderInfo{})
}

// Of two candidates exactly one leads; the other takes over at once when
// the leader resigns, and again when the leader's session is closed.
func TestZooKeeperHandOver(t *testing.T) {
	z := testserver.StartZooKeeper(t)
	a, _ := zkElector(t, z, "a", 10*time.Second)
	b, bConn := zkElector(t, z, "b", 10*time.Second)
	ta := zkCampaign(t, a, 5*time.Second)
	wonB := zkCampaignAsync(context.Background(), b)
	zkNotWon(t, wonB, 300*time.Millisecond, "b")
	if err := ta.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	tb := zkWon(t, wonB, time.Second, "b after a resigned")
	t.Logf("b took over %v after a resigned", time.Since(start))
	if tb.Token <= ta.Token {
		t.Fatalf("tokens %d then %d", ta.Token, tb.Token)
	}

	// a campaigns again with a new znode and waits; b's session ends.
	wonA := zkCampaignAsync(context.Background(), a)
	zkNotWon(t, wonA, 300*time.Millisecond, "a")
	start = time.Now()
	bConn.Close()
	ta2 := zkWon(t, wonA, time.Second, "a after b's session was closed")
	t.Logf("a took over %v after b's session was closed", time.Since(start))
	if ta2.Token <= tb.Token || ta2.Fence.Key == ta.Fence.Key {
		t.Fatalf("terms %+v then %+v", tb.Fence, ta2.Fence)
	}
	zkWaitDone(t, tb, time.Second, "b")
	if !errors.Is(tb.Err(), ErrLeadershipLost) {
		t.Fatalf("b's term ended with %v", tb.Err())
	}
	if err := tb.Resign(context.Background()); err != nil {
		t.Fatalf("resign after the connection was closed: %v", err)
	}
}

// Each candidate watches only its predecessor: deleting the middle one
// does not make the third leader, and the candidate whose znode vanished
// gives up its campaign instead of waiting forever.
func TestZooKeeperWatchesOnlyPredecessor(t *testing.T) {
	z := testserver.StartZooKeeper(t)
	admin := z.Conn(t)
	a, _ := zkElector(t, z, "a", 10*time.Second)
	b, _ := zkElector(t, z, "b", 10*time.Second)
	c, _ := zkElector(t, z, "c", 10*time.Second)
	ta := zkCampaign(t, a, 5*time.Second)
	wonB := zkCampaignAsync(context.Background(), b)
	zkWaitChildren(t, admin, 2)
	wonC := zkCampaignAsync(context.Background(), c)
	names := zkWaitChildren(t, admin, 3)
	slices.SortFunc(names, func(x, y string) int {
		cx, _ := parseCandidate(x)
		cy, _ := parseCandidate(y)
		return int(cx.seq - cy.seq)
	})
	if zkLeaderDir+"/"+names[0] != ta.Fence.Key {
		t.Fatalf("leader %s is not the lowest of %v", ta.Fence.Key, names)
	}
	if list, err := c.Candidates(context.Background()); err != nil || len(list) != 3 ||
		list[0].ID != "a" || list[0].Token != ta.Token || list[1].ID != "b" || list[2].ID != "c" || list[2].Address != "c:8080" {
		t.Fatalf("candidates = %+v, %v", list, err)
	}
	if err := admin.Delete(zkLeaderDir+"/"+names[1], -1); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-wonB:
		if r.term != nil || !errors.Is(r.err, ErrLeadershipLost) {
			t.Fatalf("b's campaign without a znode returned (%v, %v)", r.term, r.err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("b still campaigns after its znode was deleted")
	}
	zkNotWon(t, wonC, 500*time.Millisecond, "c after the middle znode was deleted")
	if ta.Err() != nil {
		t.Fatalf("a's term ended: %v", ta.Err())
	}
	// Deleting the leader's znode ends its term and lets c in.
	if err := admin.Delete(ta.Fence.Key, -1); err != nil {
		t.Fatal(err)
	}
	zkWaitDone(t, ta, time.Second, "a after its znode was deleted")
	if !errors.Is(ta.Err(), ErrLeadershipLost) {
		t.Fatalf("a's term ended with %v", ta.Err())
	}
	tc := zkWon(t, wonC, time.Second, "c after a's znode was deleted")
	if tc.Token <= ta.Token {
		t.Fatalf("tokens %d then %d", ta.Token, tc.Token)
	}
}

// Observe reports the leader, changes and deletions, goes on across a
// reconnect, and closes its channel when its context ends.
func TestZooKeeperObserve(t *testing.T) {
	z := testserver.StartZooKeeper(t)
	proxy := startZKProxy(t, z.Addr())
	o, _ := zkElectorAt(t, proxy.addr(), "o", 10*time.Second)
	a, _ := zkElector(t, z, "a", 10*time.Second)
	b, _ := zkElector(t, z, "b", 10*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	obs := o.Observe(ctx)
	zkObserved(t, obs, LeaderInfo{})
	ta := zkCampaign(t, a, 5*time.Second)
	zkObserved(t, obs, LeaderInfo{Candidate: Candidate{ID: "a", Address: "a:8080"}, Token: ta.Token})
	wonB := zkCampaignAsync(context.Background(), b)
	zkNotWon(t, wonB, 200*time.Millisecond, "b")
	select {
	case li := <-obs:
		t.Fatalf("a waiting candidate changed the leader to %+v", li)
	default:
	}
	if err := ta.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	tb := zkWon(t, wonB, time.Second, "b")
	zkObserved(t, obs, LeaderInfo{Candidate: Candidate{ID: "b", Address: "b:8080"}, Token: tb.Token})
	if err := tb.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	zkObserved(t, obs, LeaderInfo{})

	// The observer's connection is cut; a change while it is away is
	// reported once it is back (with its session, and its watch).
	proxy.setCut(true)
	ta2 := zkCampaign(t, a, 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	proxy.setCut(false)
	zkObserved(t, obs, LeaderInfo{Candidate: Candidate{ID: "a", Address: "a:8080"}, Token: ta2.Token})

	cancel()
	select {
	case _, ok := <-obs:
		for ok {
			_, ok = <-obs
		}
	case <-time.After(time.Second):
		t.Fatal("observer channel not closed after its context ended")
	}
}

// A campaign whose context ends leaves no znode behind, whether it was
// waiting or had not started.
func TestZooKeeperCancelledCampaignLeavesNoNode(t *testing.T) {
	z := testserver.StartZooKeeper(t)
	admin := z.Conn(t)
	a, _ := zkElector(t, z, "a", 10*time.Second)
	b, _ := zkElector(t, z, "b", 10*time.Second)
	ta := zkCampaign(t, a, 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if term, err := b.Campaign(ctx); term != nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled campaign returned (%v, %v)", term, err)
	}
	if names := zkChildren(t, admin); len(names) != 1 || zkLeaderDir+"/"+names[0] != ta.Fence.Key {
		t.Fatalf("candidates after a cancelled campaign: %v", names)
	}
	done, stop := context.WithCancel(context.Background())
	stop()
	if _, err := b.Campaign(done); !errors.Is(err, context.Canceled) {
		t.Fatalf("campaign with a cancelled context: %v", err)
	}
	if names := zkChildren(t, admin); len(names) != 1 {
		t.Fatalf("candidates after a cancelled campaign: %v", names)
	}
	// Close ends a waiting campaign with ErrClosed and deletes its znode.
	wonB := zkCampaignAsync(context.Background(), b)
	zkWaitChildren(t, admin, 2)
	b.Close()
	select {
	case r := <-wonB:
		if !errors.Is(r.err, ErrClosed) {
			t.Fatalf("campaign at Close returned (%v, %v)", r.term, r.err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("campaign still waiting after Close")
	}
	zkWaitChildren(t, admin, 1)
	if _, err := b.Campaign(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("campaign after Close: %v", err)
	}
}

// A pause of the server shorter than AbdicateAfter is ridden out; a longer
// one ends the term by its local deadline, while the session and the
// leader's znode still exist, so before anyone else could be elected.
func TestZooKeeperServerPause(t *testing.T) {
	const session = 2 * time.Second // AbdicateAfter 1 s
	z := testserver.StartZooKeeper(t)
	admin := z.Conn(t)
	a, _ := zkElector(t, z, "a", session)
	b, _ := zkElector(t, z, "b", 10*time.Second)
	ta := zkCampaign(t, a, 5*time.Second)
	wonB := zkCampaignAsync(context.Background(), b)
	zkWaitChildren(t, admin, 2)

	time.Sleep(300 * time.Millisecond)
	z.Pause()
	time.Sleep(400 * time.Millisecond)
	z.Resume()
	time.Sleep(1500 * time.Millisecond)
	if err := ta.Err(); err != nil {
		t.Fatalf("a 400ms pause ended the term: %v", err)
	}

	paused := time.Now()
	z.Pause()
	select {
	case <-ta.Done():
	case <-time.After(session):
	}
	took := time.Since(paused)
	z.Resume()
	if ta.Err() == nil {
		t.Fatalf("term survived a pause of %v", took)
	}
	t.Logf("term ended %v into the pause: %v", took, ta.Err())
	if !errors.Is(ta.Err(), ErrLeadershipLost) {
		t.Fatalf("cause %v", ta.Err())
	}
	// About AbdicateAfter (1 s) after the last answer; on a loaded machine
	// later, but before the session timeout.
	if took >= session || took < 500*time.Millisecond {
		t.Fatalf("term ended %v into the pause; want about AbdicateAfter (1s), before the %v session timeout", took, session)
	}
	// The session outlived the term: the znode is still there and nobody
	// else leads until the old leader resigns.
	if ok, _, err := admin.Exists(ta.Fence.Key); err != nil || !ok {
		t.Fatalf("leader znode after the pause: %v %v", ok, err)
	}
	zkNotWon(t, wonB, 300*time.Millisecond, "b while a's znode exists")
	if err := ta.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	zkWon(t, wonB, time.Second, "b after a resigned")
}

// startZKProxy puts a fault proxy between clients and target, closed at
// the end of the test.
func startZKProxy(t *testing.T, target string) *zkProxy {
	t.Helper()
	p, err := faultproxy.Start(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return &zkProxy{p}
}

// zkProxy adapts a fault proxy to these tests' vocabulary.
type zkProxy struct{ *faultproxy.Proxy }

func (p *zkProxy) addr() []string { return []string{p.Addr()} }

func (p *zkProxy) setMute(mute bool) { p.Mute(mute) }

func (p *zkProxy) setCut(cut bool) {
	if cut {
		p.Cut()
	} else {
		p.Heal()
	}
}

type zkQuiet struct{}

func (zkQuiet) Printf(string, ...any) {}

// zkDial connects to servers and waits for a session; the connection is
// closed, and its goroutines waited for, at cleanup.
func zkDial(t *testing.T, servers []string, session time.Duration) (*zk.Conn, <-chan zk.Event) {
	t.Helper()
	conn, events, err := zk.Connect(servers, session, zk.WithLogger(zkQuiet{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		for range events {
		}
	})
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.State == zk.StateHasSession {
				return conn, events
			}
		case <-timeout:
			t.Fatal("no ZooKeeper session")
		}
	}
}

// When a partition outlasts the session, the leader's term ends by its
// deadline before the server expires the session; the next candidate takes
// over once it has; a candidate cut off with the leader gives up its
// campaign when it learns that its session expired; and the same elector
// on the same connection — which go-zookeeper has given a new session —
// campaigns again with a new znode and a larger token.
func TestZooKeeperSessionExpiry(t *testing.T) {
	const session = 2 * time.Second // AbdicateAfter 1 s
	z := testserver.StartZooKeeper(t)
	admin := z.Conn(t)
	proxy := startZKProxy(t, z.Addr())
	a, aConn := zkElectorAt(t, proxy.addr(), "a", session)
	c, _ := zkElectorAt(t, proxy.addr(), "c", session)
	b, _ := zkElector(t, z, "b", 10*time.Second)
	ta := zkCampaign(t, a, 5*time.Second)
	oldSession := aConn.SessionID()
	wonB := zkCampaignAsync(context.Background(), b)
	zkWaitChildren(t, admin, 2)
	wonC := zkCampaignAsync(context.Background(), c)
	zkWaitChildren(t, admin, 3)

	cut := time.Now()
	proxy.setCut(true)
	zkWaitDone(t, ta, session, "a during the partition")
	lostAt := time.Now() // no earlier than the term ended
	lost := lostAt.Sub(cut)
	tb := zkWon(t, wonB, 2*session, "b after a's session expired")
	// The server expires the session S after a's last request reached it,
	// so up to a probe interval before the cut; a's term ends AbdicateAfter
	// after the last answered probe was sent, well before that.
	if !errors.Is(ta.Err(), ErrLeadershipLost) || lost >= session || !tb.Started.After(lostAt) {
		t.Fatalf("a's term ended %v into the partition (%v); b was elected after %v; session timeout %v",
			lost, ta.Err(), tb.Started.Sub(cut), session)
	}
	t.Logf("a's term ended %v into the partition; b was elected after %v", lost, tb.Started.Sub(cut))
	if ok, _, _ := admin.Exists(ta.Fence.Key); ok {
		t.Fatal("a's znode outlived its session")
	}

	zkWaitChildren(t, admin, 1) // c's session has expired too
	select {
	case r := <-wonC:
		t.Fatalf("c's campaign returned (%v, %v) while cut off: it cannot know yet", r.term, r.err)
	default:
	}
	proxy.setCut(false)
	select {
	case r := <-wonC:
		if r.term != nil || !errors.Is(r.err, ErrLeadershipLost) {
			t.Fatalf("c's campaign after its session expired returned (%v, %v)", r.term, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("c still campaigns after its session expired")
	}
	deadline := time.Now().Add(10 * time.Second)
	for aConn.SessionID() == oldSession || aConn.State() != zk.StateHasSession {
		if time.Now().After(deadline) {
			t.Fatal("a's connection has no new session")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := ta.Resign(context.Background()); err != nil {
		t.Fatalf("resign after expiry: %v", err)
	}
	wonA := zkCampaignAsync(context.Background(), a)
	zkWaitChildren(t, admin, 2)
	if err := tb.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	ta2 := zkWon(t, wonA, time.Second, "a again")
	if ta2.Token <= tb.Token || ta2.Fence.Key == ta.Fence.Key {
		t.Fatalf("terms %+v, %+v, then %+v", ta.Fence, tb.Fence, ta2.Fence)
	}
	if _, st, err := admin.Exists(ta2.Fence.Key); err != nil || st.EphemeralOwner != aConn.SessionID() || st.EphemeralOwner == oldSession {
		t.Fatalf("new znode %v owned by %d; sessions %d then %d", err, st.EphemeralOwner, oldSession, aConn.SessionID())
	}
}

// A create whose answer is lost may still have happened: the candidate
// finds its znode by its nonce when the connection is back, and neither
// leaves it behind as a zombie nor creates a second one.
func TestZooKeeperLostCreateAnswer(t *testing.T) {
	z := testserver.StartZooKeeper(t)
	admin := z.Conn(t)
	proxy := startZKProxy(t, z.Addr())
	a, _ := zkElector(t, z, "a", 10*time.Second)
	c, _ := zkElectorAt(t, proxy.addr(), "c", 4*time.Second)
	ta := zkCampaign(t, a, 5*time.Second)

	proxy.setMute(true)
	wonC := zkCampaignAsync(context.Background(), c)
	names := zkWaitChildren(t, admin, 2) // the create reached the server
	proxy.setCut(true)                   // and its answer is lost
	proxy.setMute(false)
	proxy.setCut(false)
	zkNotWon(t, wonC, 2500*time.Millisecond, "c")
	if got := zkChildren(t, admin); !slices.Equal(got, names) {
		t.Fatalf("candidates %v after the lost answer, want %v", got, names)
	}
	if err := ta.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	tc := zkWon(t, wonC, 2*time.Second, "c")
	if tc.Fence.Key == ta.Fence.Key || !slices.Contains(names, strings.TrimPrefix(tc.Fence.Key, zkLeaderDir+"/")) {
		t.Fatalf("c leads with %s; candidates were %v", tc.Fence.Key, names)
	}
}

// Twenty campaign/resign cycles, an observer and Close leave no goroutine
// behind.
func TestZooKeeperNoGoroutineLeaks(t *testing.T) {
	z := testserver.StartZooKeeper(t)
	admin := z.Conn(t)
	conn, events := z.ConnEvents(t, 2*time.Second)
	// A round trip on each connection: its receive loop runs by now.
	for _, c := range []*zk.Conn{admin, conn} {
		if _, _, err := c.Exists("/"); err != nil {
			t.Fatal(err)
		}
	}
	before := goleak.IgnoreCurrent()
	e, err := NewZooKeeper(conn, events, ZKOptions{Framework: "fw", SessionTimeout: 2 * time.Second, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	obs := e.Observe(ctx)
	last := int64(-1) // the first znode of a new directory has sequence 0
	for i := range 20 {
		term := zkCampaign(t, e, 5*time.Second)
		if term.Token <= last {
			t.Fatalf("cycle %d: token %d after %d", i, term.Token, last)
		}
		last = term.Token
		if err := term.Resign(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	for range obs {
	}
	zkCampaign(t, e, 5*time.Second) // ended by Close
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if names := zkChildren(t, admin); len(names) != 0 {
		t.Fatalf("znodes left: %v", names)
	}
	goleak.VerifyNone(t, before)
}

func TestZooKeeperCandidateNames(t *testing.T) {
	for name, want := range map[string]*zkCandidate{
		"candidate-0123456789abcdef-0000000042": {nonce: "0123456789abcdef", seq: 42},
		"candidate-a-b-0000000000":              {nonce: "a-b", seq: 0},
		"candidate--0000000001":                 nil, // no nonce
		"candidate-x-42":                        nil, // not ten digits
		"candidate-x-00000000x1":                nil,
		"candidate-x--000000001":                nil,
		"lock-x-0000000001":                     nil,
		"_c_0123-candidate-x-0000000001":        nil,
	} {
		got, ok := parseCandidate(name)
		switch {
		case want == nil && ok:
			t.Errorf("%s: parsed as %+v", name, got)
		case want != nil && (!ok || got.nonce != want.nonce || got.seq != want.seq || got.name != name):
			t.Errorf("%s: %+v, %v; want %+v", name, got, ok, *want)
		}
	}
	cs := []zkCandidate{{seq: 10}, {seq: 2}, {seq: 7}}
	sortCandidates(cs)
	if cs[0].seq != 2 || cs[2].seq != 10 {
		t.Fatalf("sorted %+v", cs)
	}
}

// A restart of the ZooKeeper server: sessions survive it (the server
// restores them from its log), terms may end on the leader's deadline
// while the server is down. Whatever happens, there is never a second
// leader while the first term lasts, and a leader emerges again without a
// restart of the replicas.
func TestZooKeeperServerRestart(t *testing.T) {
	// A quick restart, and one whose outage (3 s) is longer than the
	// leader's AbdicateAfter (2 s): that term must end.
	for _, outage := range []time.Duration{0, 3 * time.Second} {
		t.Run(fmt.Sprintf("outage=%v", outage), func(t *testing.T) { testZooKeeperServerRestart(t, outage) })
	}
}

func testZooKeeperServerRestart(t *testing.T, outage time.Duration) {
	z := testserver.StartZooKeeper(t)
	const session = 4 * time.Second
	a, _ := zkElector(t, z, "a", session)
	b, _ := zkElector(t, z, "b", session)
	ta := zkCampaign(t, a, 5*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wonB := zkCampaignAsync(ctx, b)
	var aEnded time.Time
	endedA := make(chan struct{})
	go func() { <-ta.Done(); aEnded = time.Now(); close(endedA) }()

	if outage > 0 {
		z.Stop()
		time.Sleep(outage)
	}
	z.Restart()

	// a's term either survived or ended; a leader is there in the end.
	select {
	case <-endedA:
		if !errors.Is(ta.Err(), ErrLeadershipLost) {
			t.Fatalf("a's term ended with %v", ta.Err())
		}
		t.Log("a's term ended during the restart")
		// ha.Run resigns a lost term once its work has returned.
		ta.Resign(context.Background())
		var next *Term
		select {
		case r := <-wonB:
			if r.err != nil {
				t.Fatalf("b's campaign: %v", r.err)
			}
			next = r.term
			if bWon := time.Now(); !aEnded.Before(bWon) {
				t.Fatal("b won before a's term ended")
			}
		case <-time.After(5 * session):
			t.Fatal("no leader after the restart")
		}
		if next.Token <= ta.Token {
			t.Fatalf("tokens %d then %d", ta.Token, next.Token)
		}
	case <-time.After(session):
		// Survived (probes answered again within AbdicateAfter of the
		// last one): b still waits behind a, and a's znode is still there.
		t.Log("a's term survived the restart")
		if outage > session/2 {
			t.Fatalf("a's term survived an outage of %v, longer than its AbdicateAfter", outage)
		}
		zkNotWon(t, wonB, 200*time.Millisecond, "b while a's term survives the restart")
		if ok, _, err := z.Conn(t).Exists(ta.Fence.Key); err != nil || !ok {
			t.Fatalf("a's znode after the restart: %v %v", ok, err)
		}
	}
}
