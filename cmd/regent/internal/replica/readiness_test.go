package replica

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/regent-sched/regent/cmd/regent/internal/config"
	"github.com/regent-sched/regent/integration/faultproxy"
	"github.com/regent-sched/regent/integration/simtest"
	"github.com/regent-sched/regent/integration/testserver"
)

// TestReadinessBoundFollowsTheElection: a replica is unready once its
// store has not answered for as long as the election takes to replace a
// leader cut off from it — the election TTL on etcd, half the session
// timeout on ZooKeeper (where such a leader abdicates) — and ready before
// that, whatever the bound (a fixed 5 s would fail both ways).
func TestReadinessBoundFollowsTheElection(t *testing.T) {
	for _, tc := range []struct {
		flags []string
		bound time.Duration
		says  string
	}{
		{[]string{"--etcd-endpoints", "http://127.0.0.1:2379", "--election-ttl", "2s"}, 2 * time.Second, "--election-ttl"},
		{[]string{"--etcd-endpoints", "http://127.0.0.1:2379", "--election-ttl", "30s"}, 30 * time.Second, "--election-ttl"},
		{[]string{"--zk-servers", "127.0.0.1:2181", "--zk-session-timeout", "4s"}, 2 * time.Second, "half of --zk-session-timeout"},
		{[]string{"--zk-servers", "127.0.0.1:2181", "--zk-session-timeout", "40s"}, 20 * time.Second, "half of --zk-session-timeout"},
		{[]string{"--etcd-endpoints", "http://127.0.0.1:2379"}, 5 * time.Second, "--election-ttl"},
		{[]string{"--zk-servers", "127.0.0.1:2181"}, 5 * time.Second, "half of --zk-session-timeout"},
	} {
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		cfg := config.Register(fs)
		if err := fs.Parse(append([]string{"--id", "r1"}, tc.flags...)); err != nil {
			t.Fatal(err)
		}
		if err := cfg.Load(fs, func(string) (string, bool) { return "", false }); err != nil {
			t.Fatal(err)
		}
		if got := cfg.StoreStaleAfter(); got != tc.bound {
			t.Errorf("%v: StoreStaleAfter = %v, want %v", tc.flags, got, tc.bound)
		}
		r := &Replica{cfg: cfg}
		// Half the bound ago: ready (also past 5 s for the long bounds).
		r.storeOK.Store(time.Now().Add(-tc.bound / 2).UnixNano())
		if err := r.readiness(); err != nil {
			t.Errorf("%v: store answered %v ago: %v, want ready", tc.flags, tc.bound/2, err)
		}
		// Just past the bound: unready, saying why (also short of 5 s for
		// the short bounds).
		r.storeOK.Store(time.Now().Add(-tc.bound - time.Millisecond).UnixNano())
		err := r.readiness()
		if err == nil || !strings.Contains(err.Error(), "longer than "+tc.bound.String()+" ("+tc.says+")") {
			t.Errorf("%v: store answered %v ago: %v, want unready naming %v and %s", tc.flags, tc.bound, err, tc.bound, tc.says)
		}
		// The probe runs often enough that a healthy store never looks
		// stale: at least 4 probes per bound, each answering within half.
		every, timeout := probeTiming(tc.bound)
		if every <= 0 || every > tc.bound/4 || every > time.Second || timeout > tc.bound/2 || timeout < every {
			t.Errorf("%v: probe every %v with timeout %v for a bound of %v", tc.flags, every, timeout, tc.bound)
		}
	}
}

// TestReadyzFailsAfterTheElectionTTL: a replica whose path to etcd is cut
// goes unready, /readyz naming the election TTL as the bound it exceeded,
// and ready again once the path heals.
func TestReadyzFailsAfterTheElectionTTL(t *testing.T) {
	e := testserver.StartEtcd(t)
	p, err := faultproxy.Start(strings.TrimPrefix(e.Endpoints()[0], "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	w := &world{etcd: e, sim: simtest.Start(t, 1, nil), store: []string{"--etcd-endpoints", "http://" + p.Addr()}}
	r := w.start(t, w.configFor(t, "r1", "--election-ttl", "3s"), Options{})
	eventually(t, 30*time.Second, "/readyz 200", func() bool {
		code, _, _ := call(t, "GET", r.base+"/readyz", "")
		return code == 200
	})
	p.Cut()
	var body string
	eventually(t, 30*time.Second, "/readyz 503 after the store went silent", func() bool {
		var code int
		code, _, body = call(t, "GET", r.base+"/readyz", "")
		return code == 503
	})
	if !strings.Contains(body, "the store has not answered for") || !strings.Contains(body, "longer than 3s (--election-ttl)") {
		t.Errorf("/readyz = %q, want it to name the 3s election TTL", body)
	}
	p.Heal()
	eventually(t, 30*time.Second, "/readyz 200 after the store came back", func() bool {
		code, _, _ := call(t, "GET", r.base+"/readyz", "")
		return code == 200
	})
}
