package core

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/regent-sched/regent/integration/faultproxy"
	"github.com/regent-sched/regent/integration/mesossim"
	"github.com/regent-sched/regent/integration/testserver"
)

// detectWait bounds every wait for the detector to see a change.
const detectWait = 15 * time.Second

func TestDetectParseSpec(t *testing.T) {
	good := []struct {
		spec string
		want masterSpec
	}{
		{"http://m1:5050", masterSpec{static: []string{"http://m1:5050"}}},
		{" http://m1:5050/, HTTPS://m2.example:5443 ", masterSpec{static: []string{"http://m1:5050", "https://m2.example:5443"}}},
		{"http://[::1]:5050", masterSpec{static: []string{"http://[::1]:5050"}}},
		{"zk://zk1:2181/mesos", masterSpec{servers: []string{"zk1:2181"}, path: "/mesos"}},
		{"ZK://zk1:2181,zk2:2182,[::1]:2183/a/b", masterSpec{servers: []string{"zk1:2181", "zk2:2182", "[::1]:2183"}, path: "/a/b"}},
		{"zk://sched:p@ss,w0rd@zk1:2181/mesos", masterSpec{servers: []string{"zk1:2181"}, path: "/mesos", auth: "sched:p@ss,w0rd"}},
	}
	for _, tc := range good {
		got, err := parseMasterSpec(tc.spec)
		if err != nil {
			t.Errorf("parseMasterSpec(%q): %v", tc.spec, err)
			continue
		}
		if !slices.Equal(got.static, tc.want.static) || !slices.Equal(got.servers, tc.want.servers) ||
			got.path != tc.want.path || got.auth != tc.want.auth {
			t.Errorf("parseMasterSpec(%q) = %+v, want %+v", tc.spec, got, tc.want)
		}
	}

	bad := []struct{ spec, want string }{
		{"", "empty"},
		{"   ", "empty"},
		{"m1:5050", "no scheme"},
		{"ftp://m1:5050", `unknown scheme "ftp"`},
		{"file:///etc/mesos/zk", `unknown scheme "file"`},
		{"zk://zk1:2181", "no path"},
		{"zk://zk1:2181/", "no path"},
		{"zk:///mesos", "no ZooKeeper hosts"},
		{"zk://sched:secret@/mesos", "no ZooKeeper hosts"},
		{"zk://zk1/mesos", `bad host:port "zk1"`},
		{"zk://sched:secret@zk1/mesos", `bad host:port "zk1"`},
		{"zk://zk1:abc/mesos", `bad host:port "zk1:abc"`},
		{"zk://zk1:0/mesos", "1..65535"},
		{"zk://zk1:65536/mesos", "1..65535"},
		{"zk://:2181/mesos", "no host"},
		{"zk://zk1:2181,/mesos", `bad host:port ""`},
		{"zk://zk1:2181/mesos/", "bad ZooKeeper path"},
		{"zk://zk1:2181//mesos", "bad ZooKeeper path"},
		{"zk://zk1:2181/a/../b", "bad ZooKeeper path"},
		{"zk://sched@zk1:2181/mesos", "user:password"},
		{"zk://:secret@zk1:2181/mesos", "user:password"},
		{"http://m1", "no port"},
		{"http://:5050", "no host"},
		{"http://m1:x", "invalid port"},
		{"http://m1:99999", "1..65535"},
		{"http://m1:5050/api", "without a path"},
		{"http://m1:5050?x=1", "without a path"},
		{"http://sched:secret@m1:5050", "credentials"},
		{"http://m1:5050,,http://m2:5050", "empty entry"},
		{"http://m1:5050,", "empty entry"},
		{"http://m1:5050,m2:5050", "no scheme"},
		{"http://m1:5050,ftp://m2:5050", `unknown scheme "ftp"`},
		{"http://m1:5050,zk://zk1:2181/mesos", "whole spec"},
	}
	for _, tc := range bad {
		d, err := NewDetector(tc.spec, zaptest.NewLogger(t))
		if err == nil {
			d.Close()
			t.Errorf("NewDetector(%q): no error, want one containing %q", tc.spec, tc.want)
			continue
		}
		if !errors.Is(err, ErrBadMasterSpec) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewDetector(%q) = %v, want ErrBadMasterSpec containing %q", tc.spec, err, tc.want)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("NewDetector(%q) = %v: shows the password", tc.spec, err)
		}
		if verr := ValidateMasterSpec(tc.spec); verr == nil || verr.Error() != err.Error() {
			t.Errorf("ValidateMasterSpec(%q) = %v, want the error of NewDetector: %v", tc.spec, verr, err)
		}
	}
	if err := ValidateMasterSpec("zk://sched:secret@zk1:2181,zk2:2181/mesos"); err != nil {
		t.Errorf("ValidateMasterSpec of a good zk spec: %v", err)
	}
	if got, want := RedactMasterSpec("zk://sched:secret@zk1:2181/mesos"), "zk://sched:***@zk1:2181/mesos"; got != want {
		t.Errorf("RedactMasterSpec = %q, want %q", got, want)
	}

	if _, err := NewDetector("http://m1:5050", nil, WithZKSessionTimeout(0)); err == nil {
		t.Error("NewDetector with a zero session timeout: no error")
	}
}

func TestDetectStaticList(t *testing.T) {
	d, err := NewDetector("http://m1:5050, https://m2:5051/", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	want := []string{"http://m1:5050", "https://m2:5051"}
	got := d.Candidates()
	if !slices.Equal(got, want) {
		t.Fatalf("Candidates() = %q, want %q", got, want)
	}
	got[0] = "http://changed:1"
	if got := d.Candidates(); !slices.Equal(got, want) {
		t.Fatalf("Candidates() = %q after the caller changed its copy, want %q", got, want)
	}
	select {
	case <-d.Changed():
		t.Fatal("a static list signalled a change")
	default:
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestDetectMasterInfoURL(t *testing.T) {
	for _, tc := range []struct{ data, want, err string }{
		{data: `{"id":"x","ip":16777343,"port":5050,"hostname":"other","address":{"hostname":"m1.example","ip":"10.0.0.1","port":5051}}`,
			want: "http://m1.example:5051"},
		{data: `{"address":{"ip":"10.0.0.2","port":5052}}`, want: "http://10.0.0.2:5052"},
		{data: `{"address":{"ip":"::1","port":5053}}`, want: "http://[::1]:5053"},
		{data: `{"id":"a","hostname":"m2.example","port":5054}`, want: "http://m2.example:5054"},
		{data: `{"hostname":"m2.example"}`, want: "http://m2.example:5050"},
		{data: `{"id":"b","ip":16777343,"port":5055}`, want: "http://127.0.0.1:5055"},
		{data: `{"ip":50462986}`, want: "http://10.1.2.3:5050"},
		{data: `{"address":{"hostname":"h","port":0},"port":5056}`, want: "http://h:5056"},
		{data: `{"hostname":"h","port":70000}`, err: "out of range"},
		{data: `{"id":"c"}`, err: "no address"},
		{data: `{not json`, err: "decode MasterInfo"},
		{data: ``, err: "decode MasterInfo"},
		{data: `[]`, err: "decode MasterInfo"},
	} {
		got, err := masterInfoURL([]byte(tc.data))
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("masterInfoURL(%s) = %q, %v; want an error containing %q", tc.data, got, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("masterInfoURL(%s) = %q, %v; want %q", tc.data, got, err, tc.want)
		}
	}
}

func TestDetectMasterNodes(t *testing.T) {
	children := []string{
		"json.info_0000000012", "log_replicas", "info_0000000001", "json.info_0000000003",
		"json.info_000000000", "json.info_00000000010", "json.info_00000000x1", "json.info_", "json.info_0000000007",
	}
	want := []string{"json.info_0000000003", "json.info_0000000007", "json.info_0000000012"}
	if got := masterNodes(children); !slices.Equal(got, want) {
		t.Fatalf("masterNodes = %q, want %q", got, want)
	}
}

func TestDetectMesosSim(t *testing.T) {
	z := testserver.StartZooKeeper(t)
	c := startDetectSim(t, z, "/mesos")
	conn := z.Conn(t)
	// Children that are not members, some of them sorting before the real
	// ones and holding a valid MasterInfo, must not be taken for the leader.
	decoy := []byte(`{"id":"decoy","hostname":"decoy.example","port":1}`)
	for _, name := range []string{"log_replicas", "json.info_000000000", "json.info_abcdefghij", "info_0000000000"} {
		detectCreate(t, conn, "/mesos/"+name, decoy, 0)
	}
	d, _ := newTestDetector(t, detectSpec(z, "/mesos"))

	first := c.LeaderURL()
	waitMasters(t, d, first)

	changed := d.Changed()
	c.FailoverMaster(0)
	second := c.LeaderURL()
	if second == first {
		t.Fatalf("failover kept the leader at %s", first)
	}
	waitMasters(t, d, second)
	select {
	case <-changed:
	default:
		t.Fatal("Changed was not signalled by the failover")
	}

	c.FailoverMaster(time.Hour) // no master leads: the members are removed
	waitMasters(t, d)
	c.FailoverMaster(0) // elected again at once
	waitMasters(t, d, c.LeaderURL())
}

func TestDetectHandWrittenNodes(t *testing.T) {
	z := testserver.StartZooKeeper(t)
	d, logs := newTestDetector(t, detectSpec(z, "/hand/mesos"))
	waitLogs(t, logs, "does not exist yet", 1)
	if got := d.Candidates(); len(got) != 0 {
		t.Fatalf("Candidates() = %q without a group", got)
	}

	// The group appears after the detector started.
	conn := z.Conn(t)
	detectCreate(t, conn, "/hand", nil, 0)
	detectCreate(t, conn, "/hand/mesos", nil, 0)
	detectCreate(t, conn, "/hand/mesos/log_replicas", nil, 0)
	bad := detectMember(t, conn, "/hand/mesos", `{not json`)
	byName := detectMember(t, conn, "/hand/mesos", `{"id":"h","hostname":"m1.example","port":5051}`)
	waitMasters(t, d, "http://m1.example:5051")
	waitLogs(t, logs, "skipping unreadable master node", 1)
	if n := countLogs(logs, bad); n == 0 {
		t.Errorf("the warning about the unreadable member does not name %s", bad)
	}

	byIP := detectMember(t, conn, "/hand/mesos", `{"id":"i","ip":16777343,"port":5052}`)
	detectDelete(t, conn, byName)
	waitMasters(t, d, "http://127.0.0.1:5052")

	detectDelete(t, conn, byIP) // only the unreadable member is left: no leader
	waitMasters(t, d)

	byAddr := detectMember(t, conn, "/hand/mesos", `{"id":"a","address":{"ip":"::1","port":5053}}`)
	waitMasters(t, d, "http://[::1]:5053")

	// The whole group goes away, and comes back.
	for _, p := range []string{bad, byAddr, "/hand/mesos/log_replicas", "/hand/mesos"} {
		detectDelete(t, conn, p)
	}
	waitMasters(t, d)
	waitLogs(t, logs, "does not exist yet", 2)
	detectCreate(t, conn, "/hand/mesos", nil, 0)
	detectMember(t, conn, "/hand/mesos", `{"id":"b","hostname":"m2.example","port":5054}`)
	waitMasters(t, d, "http://m2.example:5054")
}

func TestDetectDigestAuth(t *testing.T) {
	z := testserver.StartZooKeeper(t)
	admin := z.Conn(t)
	if err := admin.AddAuth("digest", []byte("sched:s3cret")); err != nil {
		t.Fatal(err)
	}
	acl := zk.DigestACL(zk.PermAll, "sched", "s3cret")
	if _, err := admin.Create("/secure", nil, 0, acl); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Create("/secure/json.info_", []byte(`{"id":"s","hostname":"m1.example","port":5051}`),
		zk.FlagEphemeral|zk.FlagSequence, acl); err != nil {
		t.Fatal(err)
	}

	d, logs := newTestDetector(t, "zk://sched:s3cret@"+z.Addr()+"/secure")
	waitMasters(t, d, "http://m1.example:5051")
	if n := countLogs(logs, "s3cret"); n != 0 {
		t.Errorf("%d log entries show the password", n)
	}

	anon, anonLogs := newTestDetector(t, detectSpec(z, "/secure"))
	waitLogs(t, anonLogs, zk.ErrNoAuth.Error(), 1)
	if got := anon.Candidates(); len(got) != 0 {
		t.Fatalf("Candidates() = %q without credentials", got)
	}
}

// TestDetectZooKeeperRestart kills the server and starts it again. The
// members are persistent and written by clients that do not live across the
// restart: a go-zookeeper client that reconnects while the server is still
// starting can hang for a minute (the detector bounds that wait; see
// TestDetectSilentServer), and the test must not depend on other clients.
func TestDetectZooKeeperRestart(t *testing.T) {
	z := testserver.StartZooKeeper(t)
	var first string
	detectWrite(t, z, func(conn *zk.Conn) {
		detectCreate(t, conn, "/restart", nil, 0)
		first = detectCreate(t, conn, "/restart/"+masterNodeLabel, []byte(`{"id":"a","hostname":"a.example","port":5051}`), zk.FlagSequence)
	})
	d, logs := newTestDetector(t, detectSpec(z, "/restart"), WithZKSessionTimeout(3*time.Second))
	waitMasters(t, d, "http://a.example:5051")

	z.Kill()
	waitLogs(t, logs, "lost the ZooKeeper connection", 1)
	if got := d.Candidates(); !slices.Equal(got, []string{"http://a.example:5051"}) {
		t.Fatalf("Candidates() = %q while ZooKeeper is down, want the last known leader", got)
	}
	z.Restart()
	conn := z.Conn(t) // connects once the server serves
	second := detectCreate(t, conn, "/restart/"+masterNodeLabel, []byte(`{"id":"b","hostname":"b.example","port":5052}`), zk.FlagSequence)
	detectDelete(t, conn, first)
	waitMasters(t, d, "http://b.example:5052")
	detectCreate(t, conn, "/restart/"+masterNodeLabel, []byte(`{"id":"c","hostname":"c.example","port":5053}`), zk.FlagSequence)
	detectDelete(t, conn, second)
	waitMasters(t, d, "http://c.example:5053")
}

// TestDetectSilentServer offers the detector a server that takes the
// connection and never answers, as ZooKeeper can while it starts: the
// detector must give up on it after the session timeout, not after the
// minute go-zookeeper would wait, and connect again.
func TestDetectSilentServer(t *testing.T) {
	z := testserver.StartZooKeeper(t)
	conn := z.Conn(t)
	detectCreate(t, conn, "/silent", nil, 0)
	detectMember(t, conn, "/silent", `{"id":"a","hostname":"a.example","port":5051}`)
	p := startDetectProxy(t, z.Addr())
	p.stall()
	start := time.Now()
	d, logs := newTestDetector(t, "zk://"+p.addr()+"/silent", WithZKSessionTimeout(2*time.Second))
	detectEventually(t, func() bool { return p.stalled() > 0 }, "stalled connection")
	p.heal()
	waitMasters(t, d, "http://a.example:5051")
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("found the leader after %v; the silent server held the detector too long", took)
	}
	waitLogs(t, logs, "ZooKeeper session established", 1)
	if n := countLogs(logs, "ZooKeeper session established"); n != 1 {
		t.Errorf("%d sessions established, want 1", n)
	}
}

// TestDetectPartition cuts two detectors off ZooKeeper while the leader
// changes. Both keep reporting the last leader they read meanwhile. The
// one whose session outlives the partition hears of the change through its
// re-armed watch; the other's session expires and it reads the group again
// on a new one. Both follow later changes.
func TestDetectPartition(t *testing.T) {
	z := testserver.StartZooKeeper(t)
	c := startDetectSim(t, z, "/mesos")
	p := startDetectProxy(t, z.Addr())
	spec := "zk://" + p.addr() + "/mesos"
	keep, keepLogs := newTestDetector(t, spec, WithZKSessionTimeout(8*time.Second))
	lose, loseLogs := newTestDetector(t, spec, WithZKSessionTimeout(time.Second))
	first := c.LeaderURL()
	waitMasters(t, keep, first)
	waitMasters(t, lose, first)

	cutAt := time.Now()
	p.cut()
	waitLogs(t, keepLogs, "lost the ZooKeeper connection", 1)
	waitLogs(t, loseLogs, "lost the ZooKeeper connection", 1)
	c.FailoverMaster(0)
	second := c.LeaderURL()
	direct := z.Conn(t)
	detectEventually(t, func() bool { return detectReadLeader(direct, "/mesos") == second }, "the new leader published")
	// Long enough for the server to expire a 1 s session, short enough for
	// an 8 s one to survive the reconnection.
	time.Sleep(time.Until(cutAt.Add(2500 * time.Millisecond)))
	for _, d := range []*MasterDetector{keep, lose} {
		if got := d.Candidates(); !slices.Equal(got, []string{first}) {
			t.Fatalf("Candidates() = %q during the partition, want the last known leader %s", got, first)
		}
	}
	p.heal()
	waitMasters(t, keep, second)
	waitMasters(t, lose, second)
	if countLogs(loseLogs, "session expired") == 0 {
		t.Error("the detector with a 1 s session did not see it expire")
	}
	if countLogs(keepLogs, "session expired") != 0 {
		t.Error("the detector with an 8 s session saw it expire")
	}

	c.FailoverMaster(0)
	waitMasters(t, keep, c.LeaderURL())
	waitMasters(t, lose, c.LeaderURL())
}

// newTestDetector starts a detector for spec, logging to the test and to the
// returned observer, and closes it at cleanup.
func newTestDetector(t *testing.T, spec string, opts ...DetectorOption) (*MasterDetector, *observer.ObservedLogs) {
	t.Helper()
	obs, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(zapcore.NewTee(zaptest.NewLogger(t, zaptest.Level(zapcore.InfoLevel)).Core(), obs))
	d, err := NewDetector(spec, log, opts...)
	if err != nil {
		t.Fatalf("NewDetector(%q): %v", spec, err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("close detector: %v", err)
		}
	})
	return d, logs
}

func detectSpec(z *testserver.ZooKeeper, path string) string { return "zk://" + z.Addr() + path }

// startDetectSim starts two simulated masters publishing under path.
func startDetectSim(t *testing.T, z *testserver.ZooKeeper, path string) *mesossim.Cluster {
	t.Helper()
	c, err := mesossim.New(mesossim.Config{
		Masters:            2,
		ZooKeeper:          z.Servers(),
		ZKPath:             path,
		HeartbeatInterval:  200 * time.Millisecond,
		AllocationInterval: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitMasters waits until d's candidates are want (none: no leader).
func waitMasters(t *testing.T, d *MasterDetector, want ...string) {
	t.Helper()
	deadline := time.NewTimer(detectWait)
	defer deadline.Stop()
	for {
		changed := d.Changed()
		got := d.Candidates()
		if slices.Equal(got, want) {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("Candidates() = %q after %v, want %q", got, detectWait, want)
		}
	}
}

// countLogs counts entries whose message or a string field contains s.
func countLogs(logs *observer.ObservedLogs, s string) int {
	return logs.Filter(func(e observer.LoggedEntry) bool {
		if strings.Contains(e.Message, s) {
			return true
		}
		for _, v := range e.ContextMap() {
			if str, ok := v.(string); ok && strings.Contains(str, s) {
				return true
			}
		}
		return false
	}).Len()
}

func waitLogs(t *testing.T, logs *observer.ObservedLogs, s string, n int) {
	t.Helper()
	detectEventually(t, func() bool { return countLogs(logs, s) >= n }, "log "+s)
}

func detectEventually(t *testing.T, ok func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(detectWait)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v", what, detectWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// detectReadLeader reads the leader's URL straight from ZooKeeper.
func detectReadLeader(conn *zk.Conn, path string) string {
	children, _, err := conn.Children(path)
	if err != nil {
		return ""
	}
	nodes := masterNodes(children)
	if len(nodes) == 0 {
		return ""
	}
	data, _, err := conn.Get(path + "/" + nodes[0])
	if err != nil {
		return ""
	}
	u, _ := masterInfoURL(data)
	return u
}

func detectCreate(t *testing.T, conn *zk.Conn, path string, data []byte, flags int32) string {
	t.Helper()
	p, err := conn.Create(path, data, flags, zk.WorldACL(zk.PermAll))
	if err != nil {
		t.Fatalf("create %s: %v", path, err)
	}
	return p
}

// detectMember adds a master to the group as Mesos does and returns its node.
func detectMember(t *testing.T, conn *zk.Conn, group, info string) string {
	t.Helper()
	return detectCreate(t, conn, group+"/"+masterNodeLabel, []byte(info), zk.FlagEphemeral|zk.FlagSequence)
}

func detectDelete(t *testing.T, conn *zk.Conn, path string) {
	t.Helper()
	if err := conn.Delete(path, -1); err != nil {
		t.Fatalf("delete %s: %v", path, err)
	}
}

// detectWrite runs f with a client of its own, closed before it returns.
func detectWrite(t *testing.T, z *testserver.ZooKeeper, f func(*zk.Conn)) {
	t.Helper()
	conn, events, err := zk.Connect(z.Servers(), 10*time.Second, zk.WithLogger(NewZKLogger(zap.NewNop())), zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		conn.Close()
		for range events {
		}
	}()
	detectEventually(t, func() bool { return conn.State() == zk.StateHasSession }, "session")
	f(conn)
}

// startDetectProxy puts a fault proxy between the detector and target,
// closed at the end of the test.
func startDetectProxy(t *testing.T, target string) *detectProxy {
	t.Helper()
	p, err := faultproxy.Start(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return &detectProxy{p}
}

// detectProxy adapts a fault proxy to these tests' vocabulary.
type detectProxy struct{ *faultproxy.Proxy }

func (p *detectProxy) addr() string { return p.Addr() }
func (p *detectProxy) cut()         { p.Cut() }
func (p *detectProxy) stall()       { p.Stall() }
func (p *detectProxy) heal()        { p.Heal() }
func (p *detectProxy) stalled() int { return p.Stalled() }
