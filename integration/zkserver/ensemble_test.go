package zkserver_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/regent-sched/regent/integration/zkserver"
)

// testMembers is a valid three-member ensemble for option checks; nothing
// listens on its ports.
var testMembers = []zkserver.Member{
	{ClientPort: 20001, PeerPort: 20002, ElectionPort: 20003},
	{ClientPort: 20012, PeerPort: 20013, ElectionPort: 20014},
	{ClientPort: 20021, PeerPort: 20022, ElectionPort: 20023},
}

// startEnsemble starts an ensemble, failing the test (never skipping it)
// if ZooKeeper is not installed, and closes it at cleanup.
func startEnsemble(t *testing.T, n int, opts zkserver.Options) *zkserver.Ensemble {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	began := time.Now()
	e, err := zkserver.StartEnsemble(ctx, n, opts)
	if err != nil {
		t.Fatalf("start ensemble: %v", err)
	}
	t.Logf("%d-member ensemble serving after %v", n, time.Since(began).Round(time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			for _, s := range e.Members() {
				if s.LogPath() != "" {
					t.Logf("member %d log (tail):\n%s", s.MyID(), tail(s.LogPath(), 48<<10))
				}
			}
		}
		if err := e.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return e
}

// tail returns the end of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(b[max(0, len(b)-n):])
}

// modes returns every member's mode, "-" for a member that does not
// answer.
func modes(e *zkserver.Ensemble) []string {
	var out []string
	for _, s := range e.Members() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		mode, err := s.Mode(ctx)
		cancel()
		if err != nil {
			mode = "-"
		}
		out = append(out, mode)
	}
	return out
}

// waitModes polls until ok accepts the members' modes, failing the test
// after timeout.
func waitModes(t *testing.T, e *zkserver.Ensemble, timeout time.Duration, what string, ok func([]string) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m := modes(e)
		if ok(m) {
			t.Logf("modes %v: %s", m, what)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("modes %v after %v, want %s", m, timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// oneLeader accepts the modes of a serving ensemble.
func oneLeader(m []string) bool {
	leaders, followers := 0, 0
	for _, mode := range m {
		switch mode {
		case "leader":
			leaders++
		case "follower":
			followers++
		}
	}
	return leaders == 1 && leaders+followers == len(m)
}

// createEventually creates path, retrying while a member is lost and a
// leader is elected, and fails the test if that takes 20 s.
func createEventually(t *testing.T, conn *zk.Conn, path, data string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := conn.Create(path, []byte(data), 0, zk.WorldACL(zk.PermAll))
		if err == nil || errors.Is(err, zk.ErrNodeExists) { // an earlier try may have made it
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("create %s: %v", path, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// readThrough syncs the member behind conn with the leader and checks
// path's data.
func readThrough(t *testing.T, conn *zk.Conn, path, want string) {
	t.Helper()
	if _, err := conn.Sync(path); err != nil {
		t.Fatalf("sync %s through %s: %v", path, conn.Server(), err)
	}
	data, _, err := conn.Get(path)
	if err != nil || string(data) != want {
		t.Fatalf("get %s through %s = %q, %v; want %q", path, conn.Server(), data, err, want)
	}
}

func TestEnsembleQuorum(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := startEnsemble(t, 3, zkserver.Options{Dir: dir})
	members := e.Members()
	if len(members) != 3 || len(e.Servers()) != 3 || e.ConnectString() != strings.Join(e.Servers(), ",") {
		t.Fatalf("Members() = %d, Servers() = %v, ConnectString() = %q: want three members", len(members), e.Servers(), e.ConnectString())
	}
	for i, s := range members {
		if s.MyID() != i+1 || s.Addr() != e.Servers()[i] || !s.Running() {
			t.Fatalf("member %d: MyID() = %d, Addr() = %s, Running() = %v; want id %d at %s, running", i, s.MyID(), s.Addr(), s.Running(), i+1, e.Servers()[i])
		}
		memberDir := filepath.Join(dir, "member-"+strconv.Itoa(i+1))
		if filepath.Dir(s.DataDir()) != memberDir || filepath.Dir(s.LogPath()) != memberDir {
			t.Fatalf("member %d: DataDir() = %s, LogPath() = %s; want both in %s", i+1, s.DataDir(), s.LogPath(), memberDir)
		}
		if b, err := os.ReadFile(filepath.Join(s.DataDir(), "myid")); err != nil || string(b) != strconv.Itoa(i+1)+"\n" {
			t.Fatalf("member %d: myid = %q, %v", i+1, b, err)
		}
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "member-2", "zoo.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"clientPort=" + strconv.Itoa(members[1].Port()) + "\n", "initLimit=25\n", "syncLimit=10\n", "standaloneEnabled=false\n", "server.3=127.0.0.1:"} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("member 2's zoo.cfg lacks %q:\n%s", want, cfg)
		}
	}
	waitModes(t, e, 10*time.Second, "one leader and two followers", oneLeader)

	// A write through one member is read through another.
	conns := make([]*zk.Conn, 3)
	for i, s := range members {
		conns[i] = connect(t, s) // this member only
	}
	if _, err := conns[0].Create("/regent", []byte("ensemble"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("create /regent through member 1: %v", err)
	}
	readThrough(t, conns[1], "/regent", "ensemble")

	// Losing the leader keeps a quorum of two, which elects a new leader.
	leader := slices.Index(modes(e), "leader")
	if leader < 0 {
		t.Fatalf("no leader among %v", modes(e))
	}
	first := members[leader]
	if err := first.Kill(); err != nil {
		t.Fatalf("kill leader (member %d): %v", first.MyID(), err)
	}
	waitModes(t, e, 15*time.Second, "a new leader without member "+strconv.Itoa(first.MyID()), func(m []string) bool {
		return m[leader] == "-" && slices.Contains(m, "leader") && slices.Contains(m, "follower")
	})
	live := slices.Delete(slices.Clone(members), leader, leader+1)
	client := connectServers(t, []string{live[0].Addr(), live[1].Addr()})
	createEventually(t, client, "/regent/one-down", "2")

	// A member restarted alone rejoins the quorum and catches up.
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := first.Restart(ctx); err != nil {
		t.Fatalf("restart member %d: %v", first.MyID(), err)
	}
	waitModes(t, e, 10*time.Second, "all three serving again", oneLeader)
	readThrough(t, connect(t, first), "/regent/one-down", "2")

	// Losing two of three loses the quorum: the survivor stops serving and
	// a write through it does not succeed.
	survivor := members[(leader+1)%3]
	down := []*zkserver.Server{first, members[(leader+2)%3]}
	conn := conns[slices.Index(members, survivor)]
	for _, s := range down {
		if err := s.Kill(); err != nil {
			t.Fatalf("kill member %d: %v", s.MyID(), err)
		}
	}
	waitModes(t, e, 15*time.Second, fmt.Sprintf("member %d not serving", survivor.MyID()), func(m []string) bool {
		return m[survivor.MyID()-1] == ""
	})
	created := make(chan error, 1)
	go func() {
		_, err := conn.Create("/regent/no-quorum", nil, 0, zk.WorldACL(zk.PermAll))
		created <- err
	}()
	select {
	case err := <-created:
		if err == nil {
			t.Fatal("create without a quorum succeeded")
		}
		t.Logf("create without a quorum failed as expected: %v", err)
	case <-time.After(3 * time.Second):
		t.Log("create without a quorum did not complete in 3s, as expected")
		conn.Close() // fails the pending request, which must not be sent once the quorum is back
		if err := <-created; err == nil {
			t.Fatal("create without a quorum succeeded")
		}
	}

	// Members that need each other for a quorum are restarted together.
	began := time.Now()
	if err := e.Restart(ctx, down...); err != nil {
		t.Fatalf("restart members %d and %d: %v", down[0].MyID(), down[1].MyID(), err)
	}
	t.Logf("restart of two members took %v", time.Since(began).Round(time.Millisecond))
	waitModes(t, e, 10*time.Second, "all three serving again", oneLeader)
	readThrough(t, connect(t, down[1]), "/regent", "ensemble")
	readThrough(t, connect(t, down[0]), "/regent/one-down", "2")
	if ok, _, err := connect(t, survivor).Exists("/regent/no-quorum"); err != nil || ok {
		t.Fatalf("/regent/no-quorum exists = %v, %v; want the write refused without a quorum to be absent", ok, err)
	}

	// Restart checks its arguments.
	other := start(t, zkserver.Options{})
	if err := e.Restart(ctx, other); err == nil || !strings.Contains(err.Error(), "not a member") {
		t.Fatalf("Restart of a stranger = %v, want an error", err)
	}
	if err := e.Restart(ctx, first, first); err == nil || !strings.Contains(err.Error(), "given twice") {
		t.Fatalf("Restart of a member twice = %v, want an error", err)
	}
}

func TestEnsembleOfOneLogWriterAndClose(t *testing.T) {
	t.Parallel()
	var log syncBuffer
	e := startEnsemble(t, 1, zkserver.Options{Log: &log})
	s := e.Members()[0]
	dir := filepath.Dir(s.DataDir())
	pid := s.PID()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if mode, err := s.Mode(ctx); err != nil || mode != "leader" {
		t.Fatalf("Mode() = %q, %v; want a one-member ensemble to lead", mode, err)
	}
	if s.LogPath() != "" {
		t.Fatalf("LogPath() = %q with a Log writer, want none", s.LogPath())
	}
	conn := connectServers(t, e.Servers())
	if _, err := conn.Create("/regent", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("create /regent: %v", err)
	}
	conn.Close()

	if err := e.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if s.Running() || !processGone(pid) {
		t.Fatalf("after Close: Running() = %v, pid %d gone = %v; want no process", s.Running(), pid, processGone(pid))
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary directory %s after Close: %v, want it removed", dir, err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	out := log.String()
	if !strings.Contains(out, "zk1: ==== ") || !strings.Contains(out, "QuorumPeerMain") {
		t.Fatalf("log writer got %.2000q, want the member's start line prefixed with \"zk1: \"", out)
	}
	for line := range strings.Lines(out) {
		if !strings.HasPrefix(line, "zk1: ") {
			t.Fatalf("log line %q lacks the prefix \"zk1: \"", line)
		}
	}
}

// TestEnsembleMemberPortTaken starts one member by hand, with Start, on a
// client port that is taken: it fails at once, quoting its output.
func TestEnsembleMemberPortTaken(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	members := slices.Clone(testMembers)
	members[0].ClientPort = l.Addr().(*net.TCPAddr).Port
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "zk")
	s, err := zkserver.Start(ctx, zkserver.Options{Dir: dir, MyID: 1, Ensemble: members})
	if err == nil {
		s.Close()
		t.Fatal("member on a taken port started")
	}
	msg := strings.ToLower(err.Error())
	if !strings.Contains(msg, "ensemble member 1 on "+members[0].Addr()) || !strings.Contains(msg, "address already in use") {
		t.Fatalf("Start() = %q, want it to name member 1 and quote its output", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "myid")); err != nil {
		t.Fatalf("myid: %v", err)
	}
}

func TestStartEnsembleInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		opts zkserver.Options
		want string
	}{
		{"no members", 0, zkserver.Options{}, "0 members: want at least 1"},
		{"port set", 3, zkserver.Options{Port: 2181}, "port 2181 is set"},
		{"MyID set", 3, zkserver.Options{MyID: 1}, "MyID 1 is set"},
		{"ensemble set", 3, zkserver.Options{Ensemble: testMembers}, "3 Ensemble members are set"},
		{"server property", 3, zkserver.Options{Properties: map[string]string{"server.1": "127.0.0.1:1:2"}}, "property server.1"},
		{"sub-millisecond tick", 3, zkserver.Options{TickTime: time.Microsecond}, "tick time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "zk")
			tc.opts.Dir = dir
			e, err := zkserver.StartEnsemble(context.Background(), tc.n, tc.opts)
			if err == nil {
				e.Close()
				t.Fatal("StartEnsemble succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.want) || errors.Is(err, zkserver.ErrNotInstalled) {
				t.Fatalf("StartEnsemble() = %v, want an error about %q", err, tc.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("StartEnsemble with invalid options touched %s: %v", dir, err)
			}
		})
	}
}

func TestStartEnsembleNotInstalled(t *testing.T) {
	t.Setenv("JAVA", filepath.Join(t.TempDir(), "no-java"))
	dir := filepath.Join(t.TempDir(), "zk")
	if _, err := zkserver.StartEnsemble(context.Background(), 3, zkserver.Options{Dir: dir}); !errors.Is(err, zkserver.ErrNotInstalled) {
		t.Fatalf("StartEnsemble() = %v, want ErrNotInstalled", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("StartEnsemble without java touched %s: %v", dir, err)
	}
}
