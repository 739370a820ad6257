// Package drill runs a real regent topology for failover drills: the
// replicas are `regent run` processes (so that a crash is a SIGKILL and a
// zombie leader is a SIGSTOP), the store is a real etcd or the real
// ZooKeeper, and Mesos is mesos-sim in the test's process, whose call
// journal shows exactly when a new leader subscribed and reconciled and
// whether a deposed one got anything accepted.
//
// A test starts a Topology, injects faults on replicas (Kill, Stop/Cont,
// Term, Restart), waits for the next leader with WaitLeader, and checks
// what Mesos saw with Calls and the simulator's Snapshot.
package drill

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-zookeeper/zk"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-sched/regent/integration/childproc"
	"github.com/regent-sched/regent/integration/faultproxy"
	"github.com/regent-sched/regent/integration/mesossim"
	"github.com/regent-sched/regent/integration/testserver"
	"github.com/regent-sched/regent/persist"

	"github.com/regent-sched/regent/integration/tb"
)

// Options describe a topology.
type Options struct {
	// Store is "etcd" (an embedded etcd, the default) or "zk" (the real
	// ZooKeeper).
	Store string
	// Replicas (default 3) and Agents (default 3).
	Replicas, Agents int
	// ElectionTTL is the etcd lease TTL (default 2 s); SessionTimeout the
	// ZooKeeper session timeout (default 4 s).
	ElectionTTL, SessionTimeout time.Duration
	// Flags are added to every replica's command line.
	Flags []string
	// Sim changes the simulator's configuration.
	Sim func(*mesossim.Config)
	// EtcdMembers > 1 runs etcd as a cluster of that many member
	// processes (Topology.Etcd), for drills that kill members and lose
	// the quorum; 0 or 1 is the embedded single server.
	EtcdMembers int
	// ZKMembers > 1 runs ZooKeeper as an ensemble of that many servers
	// (Topology.ZKEnsemble), for drills that lose the quorum; 0 or 1 is
	// one standalone server.
	ZKMembers int
	// Masters (default 1) is how many mesos-sim masters run; with
	// ZKMasters they publish the leading one in ZooKeeper (a server is
	// started for them when the store is etcd) and the replicas are
	// given --master zk://.../mesos, as in a production Mesos cluster.
	// Replica.Mesos is nil then: the replicas dial the masters ZooKeeper
	// names.
	Masters   int
	ZKMasters bool
	// Binary is the regent binary the replicas run; default the one
	// Binary builds from this module ($REGENT_BINARY when set).
	Binary string
	// NoAckCheck turns off the rules that read the store whenever a call
	// reaches Mesos: acked-before-commit (it reads the whole store at
	// every ACKNOWLEDGE, which at thousands of tasks is what a benchmark
	// would measure) and deposed-call. The other rules still run.
	NoAckCheck bool
}

// Topology is a running drill topology.
type Topology struct {
	t        tb.TB
	opts     Options
	Sim      *mesossim.Cluster
	Replicas []*Replica
	// Etcd is the etcd cluster when Options.EtcdMembers > 1; ZooKeeper
	// the server of the store or of the masters' detection, if any.
	Etcd       *testserver.EtcdCluster
	ZooKeeper  *testserver.ZooKeeper
	ZKEnsemble *testserver.ZooKeeperEnsemble
	storeAddrs []string
	masterSpec string // zk://... with ZKMasters
	dir        string

	acks     *ackWatch
	election *electionReader
	paused   pauses // when replicas were frozen
	// The store's commits: etcd's history is read by Check; ZooKeeper's
	// manifest is followed by zkw while the topology runs.
	etcdCli *clientv3.Client
	zkw     *zkWatch

	mu    sync.Mutex
	calls []mesossim.CallRecord
}

// Replica is one `regent run` process. Its connections to the store and
// to Mesos go through fault proxies of its own, so that a drill can cut
// one replica off while the others carry on.
type Replica struct {
	ID  string
	URL string
	// Store and Mesos are the replica's paths to the store (every member)
	// and to the simulated master.
	Store, Mesos Path
	tp           *Topology
	flags        []string
	mu           sync.Mutex
	proc         *childproc.Process // the current process
	out          *bytes.Buffer      // the current process's output
}

// Start builds regent (once per test binary), starts the store, mesos-sim
// and the replicas, and stops everything at the end of the test.
func Start(t tb.TB, o Options) *Topology {
	t.Helper()
	if o.Store == "" {
		o.Store = "etcd"
	}
	if o.Replicas == 0 {
		o.Replicas = 3
	}
	if o.Agents == 0 {
		o.Agents = 3
	}
	if o.ElectionTTL == 0 {
		o.ElectionTTL = 2 * time.Second
	}
	if o.SessionTimeout == 0 {
		o.SessionTimeout = 4 * time.Second
	}
	if o.Masters == 0 {
		o.Masters = 1
	}
	tp := &Topology{t: t, opts: o, dir: t.TempDir(), election: &electionReader{}}
	startZK := func() {
		tp.ZooKeeper = testserver.StartZooKeeper(t, testserver.WithZooKeeperSessionTimeouts(time.Second, time.Minute))
	}
	var store persist.Store
	var err error
	switch {
	case o.Store == "etcd" && o.EtcdMembers > 1:
		tp.Etcd = testserver.StartEtcdCluster(t, o.EtcdMembers)
		for _, ep := range tp.Etcd.Endpoints() {
			tp.storeAddrs = append(tp.storeAddrs, strings.TrimPrefix(ep, "http://"))
		}
		tp.etcdCli = tp.Etcd.Client(t)
		store, err = persist.NewEtcd(tp.etcdCli, persist.EtcdOptions{Framework: storeFramework})
	case o.Store == "etcd":
		e := testserver.StartEtcd(t)
		tp.storeAddrs = []string{strings.TrimPrefix(e.Endpoints()[0], "http://")}
		tp.etcdCli = e.Client(t)
		store, err = persist.NewEtcd(tp.etcdCli, persist.EtcdOptions{Framework: storeFramework})
	case o.Store == "zk" && o.EtcdMembers <= 1 && o.ZKMembers > 1:
		tp.ZKEnsemble = testserver.StartZooKeeperEnsemble(t, o.ZKMembers,
			testserver.WithZooKeeperSessionTimeouts(time.Second, time.Minute))
		tp.storeAddrs = tp.ZKEnsemble.Servers()
		store, err = persist.NewZooKeeper(tp.ZKEnsemble.Conn(t), persist.ZKOptions{Framework: storeFramework})
		tp.followCommits(tp.ZKEnsemble.Conn(t))
		tp.election.zk = tp.ZKEnsemble.Conn(t)
	case o.Store == "zk" && o.EtcdMembers <= 1:
		startZK()
		tp.storeAddrs = []string{tp.ZooKeeper.Addr()}
		store, err = persist.NewZooKeeper(tp.ZooKeeper.Conn(t), persist.ZKOptions{Framework: storeFramework})
		tp.followCommits(tp.ZooKeeper.Conn(t))
		tp.election.zk = tp.ZooKeeper.Conn(t)
	default:
		t.Fatalf("drill: store %q with %d etcd members and %d ZooKeeper members", o.Store, o.EtcdMembers, o.ZKMembers)
	}
	if err != nil {
		t.Fatalf("drill: the checker's store reader: %v", err)
	}
	tp.acks = newAckWatch(store)
	tp.election.etcd = tp.etcdCli
	if !o.NoAckCheck {
		tp.followElection()
	}
	cfg := mesossim.FastConfig()
	cfg.Masters = o.Masters
	if o.ZKMasters {
		if tp.ZooKeeper == nil {
			startZK()
		}
		cfg.ZooKeeper, cfg.ZKPath = tp.ZooKeeper.Servers(), "/mesos"
		tp.masterSpec = "zk://" + tp.ZooKeeper.Addr() + "/mesos"
	}
	if !o.NoAckCheck {
		cfg.BeforeCall = tp.beforeCall
	}
	cfg.OnCall = func(r mesossim.CallRecord) {
		tp.mu.Lock()
		tp.calls = append(tp.calls, r)
		tp.mu.Unlock()
	}
	if o.Sim != nil {
		o.Sim(&cfg)
	}
	sim, err := mesossim.New(cfg)
	if err != nil {
		t.Fatalf("drill: mesos-sim: %v", err)
	}
	t.Cleanup(func() { sim.Close() })
	for i := 0; i < o.Agents; i++ {
		if _, err := sim.AddAgent(mesossim.AgentSpec{}); err != nil {
			t.Fatalf("drill: add agent: %v", err)
		}
	}
	tp.Sim = sim
	bin := tp.binary()
	for i := 0; i < o.Replicas; i++ {
		tp.newReplica(fmt.Sprintf("r%d", i+1), nil).start(t, bin)
	}
	t.Cleanup(tp.stopAll)
	return tp
}

// followElection starts the watcher of the election keys, stopped at the
// end of the test.
func (tp *Topology) followElection() { tp.watch(tp.election.follow, tp.election.zk) }

// followCommits starts the watcher of ZooKeeper's manifest on its own
// connection, stopped at the end of the test.
func (tp *Topology) followCommits(conn *zk.Conn) {
	tp.zkw = newZKWatch(conn)
	tp.watch(tp.zkw.run, conn)
}

// watch runs a watcher until the end of the test, when its context ends;
// one stuck in a request to a ZooKeeper server that is gone is released
// by closing its connection (conn; nil for etcd, whose watches end with
// their context).
func (tp *Topology) watch(run func(context.Context), conn *zk.Conn) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		run(ctx)
	}()
	tp.t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			if conn != nil {
				conn.Close()
			}
			<-done
		}
	})
}

// AddReplica starts one more replica with extra flags (a drill may plant
// a misconfigured one, e.g. with another --store-prefix: outside the
// election and its fencing).
func (tp *Topology) AddReplica(id string, flags ...string) *Replica {
	tp.t.Helper()
	r := tp.newReplica(id, flags)
	r.start(tp.t, tp.binary())
	return r
}

// newReplica sets up a replica's address and fault proxies.
func (tp *Topology) newReplica(id string, flags []string) *Replica {
	r := &Replica{ID: id, tp: tp, flags: flags, URL: "http://" + freeAddr(tp.t)}
	for _, a := range tp.storeAddrs {
		r.Store = append(r.Store, startProxy(tp.t, a))
	}
	if tp.masterSpec == "" {
		r.Mesos = Path{startProxy(tp.t, strings.TrimPrefix(tp.Sim.URL(), "http://"))}
	}
	tp.Replicas = append(tp.Replicas, r)
	return r
}

func (r *Replica) start(t tb.TB, bin string) {
	t.Helper()
	addr := strings.TrimPrefix(r.URL, "http://")
	master := r.tp.masterSpec
	if master == "" {
		master = "http://" + r.Mesos.Addrs()[0]
	}
	args := []string{"run", "--id", r.ID, "--name", storeFramework, "--listen", addr, "--advertise-url", r.URL,
		"--master", master, "--log-format", "console", "--log-level", "debug", "--failover-timeout", "1h",
		"--relaunch-backoff-min", "100ms", "--relaunch-backoff-max", "2s", "--shutdown-timeout", "10s"}
	if r.tp.opts.Store == "zk" {
		args = append(args, "--zk-servers", strings.Join(r.Store.Addrs(), ","), "--zk-session-timeout", r.tp.opts.SessionTimeout.String())
	} else {
		args = append(args, "--etcd-endpoints", "http://"+strings.Join(r.Store.Addrs(), ",http://"), "--election-ttl", r.tp.opts.ElectionTTL.String())
	}
	args = append(args, r.tp.opts.Flags...)
	args = append(args, r.flags...)
	out := &bytes.Buffer{}
	p, err := childproc.Start(childproc.Config{
		Argv:   append([]string{bin}, args...),
		Output: &lockedWriter{mu: &r.mu, w: out},
	})
	if err != nil {
		t.Fatalf("drill: start %s: %v", r.ID, err)
	}
	r.mu.Lock()
	r.proc, r.out = p, out
	r.mu.Unlock()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// process returns the current process, nil before the first start.
func (r *Replica) process() *childproc.Process {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proc
}

// PID is the replica's current process id.
func (r *Replica) PID() int { return r.process().PID() }

// Running reports whether the replica's process is alive.
func (r *Replica) Running() bool { return !r.process().Exited() }

// running returns the current process, failing the test if it has exited.
func (r *Replica) running(op string) *childproc.Process {
	r.tp.t.Helper()
	p := r.process()
	if p.Exited() {
		r.tp.t.Fatalf("drill: %s %s: not running (%s)", op, r.ID, p.ExitStatus())
	}
	return p
}

// Kill crashes the replica (SIGKILL) and waits until the process is gone.
func (r *Replica) Kill() {
	r.tp.t.Helper()
	if err := r.running("kill").Kill(); err != nil {
		r.tp.t.Fatalf("drill: kill %s: %v", r.ID, err)
	}
}

// Term stops the replica gracefully (SIGTERM) and waits for it to exit.
func (r *Replica) Term() {
	r.tp.t.Helper()
	p := r.running("term")
	if err := p.Signal(syscall.SIGTERM); err != nil {
		r.tp.t.Fatalf("drill: term %s: %v", r.ID, err)
	}
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		r.tp.t.Fatalf("drill: %s did not exit within 30s of SIGTERM", r.ID)
	}
}

// Stop freezes the replica (SIGSTOP) and waits until all its threads have
// stopped: a zombie leader when it leads.
func (r *Replica) Stop() {
	r.tp.t.Helper()
	r.tp.paused.note(r.ID) // before: a call may leave while it stops
	if err := r.running("stop").Pause(); err != nil {
		r.tp.t.Fatalf("drill: stop %s: %v", r.ID, err)
	}
}

// Cont thaws a stopped replica (SIGCONT). Thawing a replica that has
// exited does nothing.
func (r *Replica) Cont() {
	r.tp.t.Helper()
	if err := r.process().Resume(); err != nil {
		r.tp.t.Fatalf("drill: cont %s: %v", r.ID, err)
	}
}

// Restart starts the replica's process again after it exited.
func (r *Replica) Restart() {
	r.tp.t.Helper()
	if r.Running() {
		r.tp.t.Fatalf("drill: restart %s: it still runs", r.ID)
	}
	r.start(r.tp.t, r.tp.binary())
}

// Log returns what the replica's processes printed so far.
func (r *Replica) Log() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.String()
}

// stopAll asks every replica to exit (SIGTERM, after SIGCONT in case it
// is stopped), waits up to 20 s for each, and kills what is left.
func (tp *Topology) stopAll() {
	var procs []*childproc.Process
	for _, r := range tp.Replicas {
		if p := r.process(); p != nil { // nil if its start failed
			procs = append(procs, p)
			p.Resume()
			p.Signal(syscall.SIGTERM)
		}
	}
	for _, p := range procs {
		select {
		case <-p.Done():
		case <-time.After(20 * time.Second):
			if err := p.Kill(); err != nil {
				tp.t.Errorf("drill: %v", err)
			}
		}
	}
	if tp.t.Failed() {
		for _, r := range tp.Replicas {
			tp.t.Logf("--- log of %s ---\n%s", r.ID, tailLines(r.Log(), 300))
		}
	}
}

func tailLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Calls returns the scheduler calls mesos-sim handled so far, in order.
func (tp *Topology) Calls() []mesossim.CallRecord {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([]mesossim.CallRecord(nil), tp.calls...)
}

// Leader asks every live replica who leads and returns the leader only
// when all that answer agree and the leader itself says it is ready.
func (tp *Topology) Leader(ctx context.Context) (*Replica, error) {
	var id string
	for _, r := range tp.Replicas {
		if !r.Running() || r.ready(ctx) != nil {
			continue // a replica that cannot reach the store may hold a stale view
		}
		l, err := r.leader(ctx)
		if err != nil {
			continue // stopped or starting
		}
		switch {
		case l.Leader.ID == "":
			return nil, fmt.Errorf("%s sees no leader", r.ID)
		case id == "":
			id = l.Leader.ID
		case id != l.Leader.ID:
			return nil, fmt.Errorf("replicas disagree: %s and %s", id, l.Leader.ID)
		}
	}
	for _, r := range tp.Replicas {
		if r.ID == id {
			l, err := r.leader(ctx)
			if err != nil || !l.Self.Ready {
				return nil, fmt.Errorf("leader %s not ready (%v)", id, err)
			}
			return r, nil
		}
	}
	return nil, fmt.Errorf("no leader")
}

// WaitLeader waits until a replica other than those in except leads, is
// ready and subscribed to Mesos, and returns it.
func (tp *Topology) WaitLeader(timeout time.Duration, except ...*Replica) *Replica {
	tp.t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		r, err := tp.Leader(ctx)
		if err == nil && !contains(except, r) {
			info, ierr := r.Info(ctx)
			if ierr == nil && info.Subscribed {
				cancel()
				return r
			}
			err = fmt.Errorf("leader %s not subscribed yet (%v)", r.ID, ierr)
		}
		cancel()
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	tp.t.Fatalf("drill: no new leader within %v: %v", timeout, last)
	return nil
}

func contains(rs []*Replica, r *Replica) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

func startProxy(t tb.TB, target string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.Start(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// freeAddr is a loopback host:port that was free a moment ago.
func freeAddr(t tb.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

var (
	buildOnce sync.Once
	binPath   string
	builtDir  string // what Binary built, to remove
	buildErr  error
)

// RemoveBinary removes the binary Binary built, if it built one: call it
// from TestMain once the tests are done (each one is about 50 MB).
func RemoveBinary() {
	if builtDir != "" {
		os.RemoveAll(builtDir)
	}
}

// binary is the regent binary of the replicas.
func (tp *Topology) binary() string {
	if tp.opts.Binary != "" {
		return tp.opts.Binary
	}
	return Binary(tp.t)
}

// Binary returns the regent binary built from this module, once per
// process (or $REGENT_BINARY when set).
func Binary(t tb.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("REGENT_BINARY"); p != "" {
			binPath = p
			return
		}
		root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
		if err != nil {
			buildErr = fmt.Errorf("find the module root: %v", err)
			return
		}
		dir, err := os.MkdirTemp("", "regent-drill-")
		if err != nil {
			buildErr = err
			return
		}
		builtDir = dir
		binPath = filepath.Join(dir, "regent")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/regent")
		cmd.Dir = strings.TrimSpace(string(root))
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/regent: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}
