package ha

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap/zaptest"

	"github.com/regent-sched/regent/integration/testserver"
	"github.com/regent-sched/regent/persist"
)

// auditObserved reads obs until it reports want, appending every report to
// *seen, and fails the test after 5 s.
func auditObserved(t *testing.T, obs <-chan LeaderInfo, seen *[]LeaderInfo, want LeaderInfo, what string) {
	t.Helper()
	auditObservedWithin(t, 5*time.Second, obs, seen, want, what)
}

func auditObservedWithin(t *testing.T, d time.Duration, obs <-chan LeaderInfo, seen *[]LeaderInfo, want LeaderInfo, what string) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case li, ok := <-obs:
			if !ok {
				t.Fatalf("%s: observer closed while waiting for %+v", what, want)
			}
			*seen = append(*seen, li)
			if li == want {
				return
			}
		case <-deadline:
			t.Fatalf("%s: observer never reported %+v; reports so far: %+v", what, want, *seen)
		}
	}
}

// auditEtcdLeader reads the leader straight from etcd: the key under the
// election directory with the lowest create revision.
func auditEtcdLeader(t *testing.T, cli *clientv3.Client, framework string) LeaderInfo {
	t.Helper()
	resp, err := cli.Get(context.Background(), persist.LeaderDir("", framework)+"/", clientv3.WithFirstCreate()...)
	if err != nil {
		t.Fatal(err)
	}
	var li LeaderInfo
	if len(resp.Kvs) > 0 {
		if err := json.Unmarshal(resp.Kvs[0].Value, &li.Candidate); err != nil {
			t.Fatal(err)
		}
		li.Token = resp.Kvs[0].CreateRevision
	}
	return li
}

// The etcd standby view of the leader reports the deletion of the leader
// key as "no leader" — the leader resigning with no other candidate, its
// key deleted, its lease revoked, also while the observer was cut off from
// etcd — and never reports a leader whose key is gone. etcd's own
// Election.Observe reports no deletion (it keeps showing the last leader
// until a new key appears): a standby built on it would redirect to a
// replica that no longer leads.
func TestEtcdObserveReportsLeaderDeletion(t *testing.T) {
	etcd := testserver.StartEtcd(t)
	cli := etcd.Client(t)
	// The observer talks to etcd through a proxy that can cut it off.
	proxy := startZKProxy(t, strings.TrimPrefix(etcd.Endpoints()[0], "http://"))
	ocli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + proxy.addr()[0]}, DialTimeout: time.Second,
		Logger: zaptest.NewLogger(t).Named("observer-client")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ocli.Close() })
	o := etcdElector(t, ocli, "o", 2*time.Second)
	a := etcdElector(t, cli, "a", 2*time.Second)
	b := etcdElector(t, cli, "b", 2*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	obs := o.Observe(ctx)
	var seen []LeaderInfo
	none := LeaderInfo{}
	auditObserved(t, obs, &seen, none, "before any campaign")

	// 1. The only candidate leads, then resigns: "no leader".
	ta := campaign(t, a, 5*time.Second)
	auditObserved(t, obs, &seen, LeaderInfo{Candidate: Candidate{ID: "a", Address: "a:8080"}, Token: ta.Token}, "a leads")
	if err := ta.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	auditObserved(t, obs, &seen, none, "a resigned with no other candidate")

	// 2. The leader's key is deleted behind its back while b waits: the
	// view moves to b, and never back to a.
	ta2 := campaign(t, a, 5*time.Second)
	auditObserved(t, obs, &seen, LeaderInfo{Candidate: Candidate{ID: "a", Address: "a:8080"}, Token: ta2.Token}, "a leads again")
	type result struct {
		term *Term
		err  error
	}
	won := make(chan result, 1)
	go func() {
		term, err := b.Campaign(ctx)
		won <- result{term, err}
	}()
	eventually(t, 5*time.Second, "b campaigns behind a", func() bool {
		list, err := o.Candidates(context.Background())
		return err == nil && len(list) == 2
	})
	if _, err := cli.Delete(context.Background(), ta2.Fence.Key); err != nil {
		t.Fatal(err)
	}
	var tb *Term
	select {
	case r := <-won:
		if r.err != nil {
			t.Fatalf("b's campaign: %v", r.err)
		}
		tb = r.term
	case <-time.After(5 * time.Second):
		t.Fatal("b did not win after a's key was deleted")
	}
	auditObserved(t, obs, &seen, LeaderInfo{Candidate: Candidate{ID: "b", Address: "b:8080"}, Token: tb.Token}, "b leads")

	// 3. The lease of the only leader is revoked (what its expiry does):
	// "no leader".
	get, err := cli.Get(context.Background(), tb.Fence.Key)
	if err != nil || len(get.Kvs) != 1 {
		t.Fatalf("b's key: %v %v", get, err)
	}
	if _, err := cli.Revoke(context.Background(), clientv3.LeaseID(get.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	auditObserved(t, obs, &seen, none, "b's lease revoked with no other candidate")

	// 4. The observer is cut off while a leads and resigns: once back, it
	// reports "no leader", not the leader it last saw.
	ta3 := campaign(t, a, 5*time.Second)
	auditObserved(t, obs, &seen, LeaderInfo{Candidate: Candidate{ID: "a", Address: "a:8080"}, Token: ta3.Token}, "a leads a third time")
	proxy.setCut(true)
	if err := ta3.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	proxy.setCut(false)
	auditObservedWithin(t, 20*time.Second, obs, &seen, none, "a resigned while the observer was cut off")

	// Anything still in flight is reported within a moment; nothing may
	// bring back a leader whose key is gone.
	quiet := time.After(500 * time.Millisecond)
drain:
	for {
		select {
		case li := <-obs:
			seen = append(seen, li)
		case <-quiet:
			break drain
		}
	}
	if last, now := seen[len(seen)-1], auditEtcdLeader(t, cli, "fw"); last != now || now != none {
		t.Fatalf("observer's last report %+v, store says %+v", last, now)
	}
	// Leader keys are created with ever larger revisions: a view that
	// never goes back to a gone key reports strictly growing tokens
	// (with "no leader" in between).
	var top int64
	for i, li := range seen {
		if li.ID == "" {
			if li != none {
				t.Fatalf("report %d: %+v", i, li)
			}
			continue
		}
		if li.Token <= top {
			t.Fatalf("report %d shows %+v after a leader with token %d: a gone key came back (reports %+v)", i, li, top, seen)
		}
		top = li.Token
	}
	t.Logf("reports: %+v", seen)
}
