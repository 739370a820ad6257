package ha

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/regent-sched/regent/integration/testserver"
	"github.com/regent-sched/regent/persist"
)

func etcdElector(t *testing.T, cli *clientv3.Client, id string, ttl time.Duration) *EtcdElector {
	t.Helper()
	e, err := NewEtcd(cli, EtcdOptions{Framework: "fw", Candidate: Candidate{ID: id, Address: id + ":8080"}, TTL: ttl,
		Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func campaign(t *testing.T, e Elector, d time.Duration) *Term {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	term, err := e.Campaign(ctx)
	if err != nil {
		t.Fatalf("campaign: %v", err)
	}
	return term
}

func TestEtcdOptionsValidation(t *testing.T) {
	cli := testserver.StartEtcd(t).Client(t)
	for name, o := range map[string]EtcdOptions{
		"no framework":   {},
		"slash":          {Framework: "a/b"},
		"prefix":         {Framework: "fw", Prefix: "regent"},
		"short ttl":      {Framework: "fw", TTL: time.Second},
		"fractional ttl": {Framework: "fw", TTL: 2500 * time.Millisecond},
		"margin":         {Framework: "fw", TTL: 3 * time.Second, Margin: 2 * time.Second},
	} {
		if _, err := NewEtcd(cli, o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewEtcd(nil, EtcdOptions{Framework: "fw"}); err == nil {
		t.Error("nil client accepted")
	}
}

func TestEtcdElectionHandOver(t *testing.T) {
	cli := testserver.StartEtcd(t).Client(t)
	a := etcdElector(t, cli, "a", 2*time.Second)
	b := etcdElector(t, cli, "b", 2*time.Second)
	ta := campaign(t, a, 5*time.Second)
	// The fence is the leader key and its create revision.
	get, err := cli.Get(context.Background(), ta.Fence.Key)
	if err != nil || len(get.Kvs) != 1 || get.Kvs[0].CreateRevision != ta.Fence.Revision || ta.Token != ta.Fence.Revision {
		t.Fatalf("fence %+v vs %v (%v)", ta.Fence, get, err)
	}
	obs := a.Observe(t.Context())
	if li := <-obs; li.ID != "a" || li.Address != "a:8080" || li.Token != ta.Token {
		t.Fatalf("observed %+v", li)
	}
	won := make(chan *Term, 1)
	go func() {
		term, err := b.Campaign(context.Background())
		if err != nil {
			t.Error(err)
		}
		won <- term
	}()
	select {
	case <-won:
		t.Fatal("b won while a leads")
	case <-time.After(300 * time.Millisecond):
	}
	if err := ta.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(ta.Err(), ErrResigned) {
		t.Fatalf("a's term ended with %v", ta.Err())
	}
	var tb *Term
	select {
	case tb = <-won:
	case <-time.After(3 * time.Second):
		t.Fatal("b did not take over within 3s of a's resignation")
	}
	if tb.Token <= ta.Token {
		t.Fatalf("token did not grow: %d then %d", ta.Token, tb.Token)
	}
	// Observe saw the hand-over (possibly through "no leader").
	deadline := time.After(3 * time.Second)
	for {
		select {
		case li := <-obs:
			if li.ID == "b" {
				return
			}
		case <-deadline:
			t.Fatal("observer never saw b lead")
		}
	}
}

func TestEtcdTermEndsWhenItsKeyIsDeleted(t *testing.T) {
	cli := testserver.StartEtcd(t).Client(t)
	term := campaign(t, etcdElector(t, cli, "a", 2*time.Second), 5*time.Second)
	if _, err := cli.Delete(context.Background(), term.Fence.Key); err != nil {
		t.Fatal(err)
	}
	select {
	case <-term.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("term survived the deletion of its key")
	}
	if !errors.Is(term.Err(), ErrLeadershipLost) {
		t.Fatalf("cause %v", term.Err())
	}
}

func TestEtcdTermEndsWhenItsLeaseIsRevoked(t *testing.T) {
	cli := testserver.StartEtcd(t).Client(t)
	e := etcdElector(t, cli, "a", 3*time.Second)
	term := campaign(t, e, 5*time.Second)
	get, _ := cli.Get(context.Background(), term.Fence.Key)
	if _, err := cli.Revoke(context.Background(), clientv3.LeaseID(get.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-term.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("term survived the revocation of its lease")
	}
	// A new campaign uses a new session and wins with a larger token.
	next := campaign(t, e, 5*time.Second)
	if next.Token <= term.Token {
		t.Fatalf("tokens %d then %d", term.Token, next.Token)
	}
}

// A candidate waiting behind a leader whose own lease is revoked must give
// up its campaign (no zombie candidate that never contends again, no
// phantom leader without a lease).
func TestEtcdWaitingCandidateNoticesLeaseLoss(t *testing.T) {
	cli := testserver.StartEtcd(t).Client(t)
	a := etcdElector(t, cli, "a", 2*time.Second)
	b := etcdElector(t, cli, "b", 2*time.Second)
	campaign(t, a, 5*time.Second)
	errc := make(chan error, 1)
	go func() {
		_, err := b.Campaign(context.Background())
		errc <- err
	}()
	var bKey *clientv3.GetResponse
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := cli.Get(context.Background(), "/regent/fw/leader/", clientv3.WithPrefix())
		if err == nil && len(resp.Kvs) == 2 {
			bKey = resp
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if bKey == nil {
		t.Fatal("b never campaigned")
	}
	lease := bKey.Kvs[1].Lease
	if bKey.Kvs[1].CreateRevision < bKey.Kvs[0].CreateRevision {
		lease = bKey.Kvs[0].Lease
	}
	if _, err := cli.Revoke(context.Background(), clientv3.LeaseID(lease)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrLeadershipLost) {
			t.Fatalf("campaign returned %v, want ErrLeadershipLost", err)
		}
	case <-time.After(4 * time.Second):
		t.Fatal("campaign still waiting after its lease was revoked")
	}
}

// With etcd unreachable (quorum lost), the leader ends its term by its own
// deadline — before the TTL, so before anyone else could be elected — and
// a leader emerges again when the quorum returns.
func TestEtcdQuorumLossEndsTermBeforeTTL(t *testing.T) {
	cluster := testserver.StartEtcdCluster(t, 3)
	cli := cluster.Client(t)
	const ttl = 2 * time.Second
	e := etcdElector(t, cli, "a", ttl)
	term := campaign(t, e, 10*time.Second)
	time.Sleep(ttl / 2) // a few renewals
	lost := time.Now()
	cluster.Member(1).Kill()
	cluster.Member(2).Kill()
	select {
	case <-term.Done():
	case <-time.After(2 * ttl):
		t.Fatal("term survived quorum loss")
	}
	if took := time.Since(lost); took > ttl {
		t.Fatalf("term ended %v after quorum loss; must be before the %v TTL", took, ttl)
	}
	if !errors.Is(term.Err(), ErrLeadershipLost) {
		t.Fatalf("cause %v", term.Err())
	}
	cluster.Member(1).Restart()
	cluster.Member(2).Restart()
	cluster.WaitHealthy(30 * time.Second)
	next := campaign(t, e, 20*time.Second)
	if next.Token <= term.Token {
		t.Fatalf("tokens %d then %d", term.Token, next.Token)
	}
}

// Candidates lists every campaigning replica, leader first, with the
// address it advertises.
func TestEtcdCandidates(t *testing.T) {
	cli := testserver.StartEtcd(t).Client(t)
	a := etcdElector(t, cli, "a", 2*time.Second)
	b := etcdElector(t, cli, "b", 2*time.Second)
	if list, err := a.Candidates(context.Background()); err != nil || len(list) != 0 {
		t.Fatalf("before any campaign: %v, %v", list, err)
	}
	ta := campaign(t, a, 5*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.Campaign(ctx) }()
	defer func() { cancel(); <-done }()
	var list []LeaderInfo
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var err error
		if list, err = b.Candidates(context.Background()); err == nil && len(list) == 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(list) != 2 || list[0].ID != "a" || list[0].Address != "a:8080" || list[0].Token != ta.Token ||
		list[1].ID != "b" || list[1].Token <= ta.Token {
		t.Fatalf("candidates = %+v", list)
	}
}

// Many campaign cycles, lost and resigned terms and an observer leave no
// goroutine of the elector behind once it is closed, and no key.
func TestEtcdNoGoroutineLeaks(t *testing.T) {
	cli := testserver.StartEtcd(t).Client(t)
	// One cycle first: the client's lease keep-alive stream (one per
	// client, for its lifetime) and its server side start with the first
	// session, and are not the elector's.
	warm := etcdElector(t, cli, "warm-up", 2*time.Second)
	if err := campaign(t, warm, 5*time.Second).Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	warm.Close()
	before := goleak.IgnoreCurrent()
	e, err := NewEtcd(cli, EtcdOptions{Framework: "fw", TTL: 2 * time.Second, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	obs := e.Observe(ctx)
	var last int64
	for i := range 20 {
		term := campaign(t, e, 5*time.Second)
		if term.Token <= last {
			t.Fatalf("cycle %d: token %d after %d", i, term.Token, last)
		}
		last = term.Token
		if i%4 == 3 {
			// A lost term: its key deleted behind its back.
			if _, err := cli.Delete(context.Background(), term.Fence.Key); err != nil {
				t.Fatal(err)
			}
			select {
			case <-term.Done():
			case <-time.After(5 * time.Second):
				t.Fatalf("cycle %d: term survived the deletion of its key", i)
			}
		}
		if err := term.Resign(context.Background()); err != nil && !errors.Is(err, ErrLeadershipLost) {
			t.Fatalf("cycle %d: resign: %v", i, err)
		}
	}
	cancel()
	for range obs {
	}
	campaign(t, e, 5*time.Second) // ended by Close
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(context.Background(), persist.LeaderDir("", "fw"), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	// Close revokes the last term's lease: its key goes with it.
	if len(resp.Kvs) != 0 {
		t.Fatalf("keys left: %v", resp.Kvs)
	}
	goleak.VerifyNone(t, before)
}

// A leader cut off from etcd (the server and the other replicas carry on)
// ends its term on its own deadline, before the next replica can win: the
// order of the two events is the fencing argument, not a clock reading.
func TestEtcdNetworkCutEndsTermBeforeAnotherWins(t *testing.T) {
	etcd := testserver.StartEtcd(t)
	proxy := startZKProxy(t, strings.TrimPrefix(etcd.Endpoints()[0], "http://"))
	cut, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + proxy.addr()[0]}, DialTimeout: time.Second,
		Logger: zaptest.NewLogger(t).Named("cut-client")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cut.Close() })
	const ttl = 2 * time.Second
	a := etcdElector(t, cut, "a", ttl)
	b := etcdElector(t, etcd.Client(t), "b", ttl)
	ta := campaign(t, a, 5*time.Second)

	var aEnded time.Time
	endedA := make(chan struct{})
	go func() { <-ta.Done(); aEnded = time.Now(); close(endedA) }()
	won := make(chan *Term, 1)
	go func() {
		tb, err := b.Campaign(context.Background())
		if err != nil {
			t.Error(err)
		}
		won <- tb
	}()
	time.Sleep(ttl / 2) // b waits behind a; a renews a few times
	select {
	case <-won:
		t.Fatal("b won while a held its term")
	default:
	}
	proxy.setCut(true)
	var tb *Term
	select {
	case tb = <-won:
	case <-time.After(10 * ttl):
		t.Fatal("b did not win after a was cut off")
	}
	bWon := time.Now()
	<-endedA
	if !aEnded.Before(bWon) {
		t.Fatalf("a's term ended at %v, after b won at %v: two leaders", aEnded.Format(time.StampMilli), bWon.Format(time.StampMilli))
	}
	if !errors.Is(ta.Err(), ErrLeadershipLost) || tb.Token <= ta.Token {
		t.Fatalf("a ended with %v; tokens %d then %d", ta.Err(), ta.Token, tb.Token)
	}
	// Reconnected, a is a candidate again behind b.
	proxy.setCut(false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := a.Campaign(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a's campaign while b leads: %v, want to wait", err)
	}
}
