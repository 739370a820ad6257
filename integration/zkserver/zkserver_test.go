package zkserver_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/goleak"

	"github.com/regent-sched/regent/integration/zkserver"

	"github.com/regent-sched/regent/internal/zkdial"
)

// TestMain fails the package if any test leaves a goroutine behind: every
// server's reaper and every zk client must be shut down.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startTimeout bounds a server start in these tests.
const startTimeout = 60 * time.Second

// start starts a server, failing the test (never skipping it) if ZooKeeper
// is not installed, and closes it at cleanup.
func start(t *testing.T, opts zkserver.Options) *zkserver.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	s, err := zkserver.Start(ctx, opts)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() && s.LogPath() != "" {
			b, _ := os.ReadFile(s.LogPath())
			t.Logf("server log:\n%s", b)
		}
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// connect returns a client with an established session, closed at cleanup
// unless the test closes it first.
func connect(t *testing.T, s *zkserver.Server) *zk.Conn {
	t.Helper()
	return connectServers(t, s.Servers())
}

// connectServers is connect for a client of the given servers.
func connectServers(t *testing.T, servers []string) *zk.Conn {
	t.Helper()
	conn, events, err := zk.Connect(servers, 10*time.Second,
		// An ensemble member losing or regaining its quorum can take the
		// connection and never answer it.
		zk.WithDialer(zkdial.Handshake(2*time.Second)), zk.WithLogger(discard{}), zk.WithLogInfo(false))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	var once sync.Once
	closeConn := func() {
		once.Do(func() {
			conn.Close()
			for range events { // closed when the client's goroutines end
			}
		})
	}
	t.Cleanup(closeConn)
	timer := time.NewTimer(15 * time.Second)
	defer timer.Stop()
	for {
		select {
		case ev := <-events:
			if ev.State == zk.StateHasSession {
				return conn
			}
		case <-timer.C:
			t.Fatalf("no session with %v after 15s", servers)
		}
	}
}

type discard struct{}

func (discard) Printf(string, ...any) {}

// ruok sends the four-letter word ruok and returns the answer.
func ruok(addr string, timeout time.Duration) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return "", err
	}
	if _, err := io.WriteString(conn, "ruok"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(conn)
	return string(b), err
}

// processGone reports whether no process has the given pid.
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

func TestInstalled(t *testing.T) {
	if err := zkserver.Installed(); err != nil {
		t.Fatalf("the ZooKeeper integration tests need ZooKeeper: %v", err)
	}
}

func TestNotInstalled(t *testing.T) {
	t.Setenv("JAVA", filepath.Join(t.TempDir(), "no-java"))
	err := zkserver.Installed()
	if !errors.Is(err, zkserver.ErrNotInstalled) {
		t.Fatalf("Installed() = %v, want ErrNotInstalled", err)
	}
	for _, want := range []string{"sudo scripts/install-zookeeper.sh", "apt-get install -y --no-install-recommends zookeeper", "java not found"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Installed() = %q, want it to mention %q", err, want)
		}
	}
	dir := filepath.Join(t.TempDir(), "zk")
	if _, err := zkserver.Start(context.Background(), zkserver.Options{Dir: dir}); !errors.Is(err, zkserver.ErrNotInstalled) {
		t.Fatalf("Start() = %v, want ErrNotInstalled", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Start without java touched %s: %v", dir, err)
	}
}

func TestInvalidOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts zkserver.Options
		want string
	}{
		{"negative port", zkserver.Options{Port: -1}, "port -1"},
		{"huge port", zkserver.Options{Port: 70000}, "port 70000"},
		{"sub-millisecond tick", zkserver.Options{TickTime: time.Microsecond}, "tick time"},
		{"max below min", zkserver.Options{MinSessionTimeout: 2 * time.Second, MaxSessionTimeout: time.Second}, "below min session timeout"},
		{"negative start timeout", zkserver.Options{StartTimeout: -time.Second}, "start timeout"},
		{"dataDir property", zkserver.Options{Properties: map[string]string{"dataDir": "/tmp"}}, "dataDir"},
		{"clientPort property", zkserver.Options{Properties: map[string]string{"clientPort": "2181"}}, "clientPort"},
		{"whitelist without stat", zkserver.Options{Properties: map[string]string{"4lw.commands.whitelist": "ruok, mntr"}}, "ruok and stat"},
		{"MyID without ensemble", zkserver.Options{MyID: 1}, "MyID 1 is set but Ensemble is empty"},
		{"MyID zero in ensemble", zkserver.Options{Ensemble: testMembers}, "MyID 0 out of range: want 1 to 3"},
		{"MyID beyond ensemble", zkserver.Options{MyID: 4, Ensemble: testMembers}, "MyID 4 out of range: want 1 to 3"},
		{"port not the member's", zkserver.Options{MyID: 2, Port: 2181, Ensemble: testMembers}, "port 2181 differs from the client port 20012 of ensemble member 2"},
		{"ensemble port zero", zkserver.Options{MyID: 1, Ensemble: []zkserver.Member{{ClientPort: 20001, ElectionPort: 20003}}}, "ensemble member 1's peer port 0 out of range"},
		{"ensemble port too big", zkserver.Options{MyID: 1, Ensemble: []zkserver.Member{{ClientPort: 20001, PeerPort: 20002, ElectionPort: 70000}}}, "ensemble member 1's election port 70000 out of range"},
		{"ensemble port twice", zkserver.Options{MyID: 1, Ensemble: []zkserver.Member{
			{ClientPort: 20001, PeerPort: 20002, ElectionPort: 20003},
			{ClientPort: 20011, PeerPort: 20002, ElectionPort: 20013},
		}}, "ensemble member 2's peer port 20002 is also ensemble member 1's peer port"},
		{"server property in ensemble", zkserver.Options{MyID: 1, Ensemble: testMembers, Properties: map[string]string{"server.4": "127.0.0.1:1:2"}}, "property server.4 is set by Start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := zkserver.Start(context.Background(), tc.opts)
			if err == nil {
				s.Close()
				t.Fatal("Start succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.want) || errors.Is(err, zkserver.ErrNotInstalled) {
				t.Fatalf("Start() = %v, want an error about %q", err, tc.want)
			}
		})
	}
}

func TestStartServesAndClose(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	s, err := zkserver.Start(ctx, zkserver.Options{})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	dir := filepath.Dir(s.DataDir())
	pid := s.PID()
	if !s.Running() || pid <= 0 {
		t.Fatalf("Running() = %v, PID() = %d after Start", s.Running(), pid)
	}
	if host, _, _ := net.SplitHostPort(s.Addr()); host != "127.0.0.1" || s.Port() == 0 || s.Addr() != s.Servers()[0] {
		t.Fatalf("Addr() = %q, Port() = %d, Servers() = %v: want one 127.0.0.1 address", s.Addr(), s.Port(), s.Servers())
	}
	if got, err := ruok(s.Addr(), time.Second); err != nil || got != "imok" {
		t.Fatalf("ruok = %q, %v; want imok", got, err)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "zoo.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"clientPortAddress=127.0.0.1\n", "admin.enableServer=false\n", "4lw.commands.whitelist=ruok,stat\n", "clientPort=" + strconv.Itoa(s.Port()) + "\n"} {
		if !bytes.Contains(cfg, []byte(want)) {
			t.Errorf("zoo.cfg lacks %q:\n%s", want, cfg)
		}
	}

	conn := connect(t, s)
	if _, err := conn.Create("/regent", []byte("v"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("create /regent: %v", err)
	}
	if data, _, err := conn.Get("/regent"); err != nil || string(data) != "v" {
		t.Fatalf("get /regent = %q, %v; want \"v\"", data, err)
	}
	conn.Close()

	if st, err := os.Stat(s.LogPath()); err != nil || st.Size() == 0 || filepath.Dir(s.LogPath()) != dir {
		t.Errorf("log %s: %v (size %d), want a non-empty file in %s", s.LogPath(), err, sizeOf(st), dir)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if s.Running() || !processGone(pid) {
		t.Fatalf("after Close: Running() = %v, pid %d gone = %v; want no process", s.Running(), pid, processGone(pid))
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary directory %s after Close: %v, want it removed", dir, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := s.Restart(ctx); err == nil {
		t.Fatal("Restart after Close succeeded")
	}
}

func sizeOf(st os.FileInfo) int64 {
	if st == nil {
		return 0
	}
	return st.Size()
}

func TestRestartKeepsData(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := start(t, zkserver.Options{Dir: dir})
	conn := connect(t, s)
	if _, err := conn.Create("/regent", []byte("kept"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("create /regent: %v", err)
	}
	conn.Close()
	port, pid := s.Port(), s.PID()

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := s.Restart(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if s.Port() != port || s.PID() == pid || !processGone(pid) || !s.Running() {
		t.Fatalf("after Restart: port %d (was %d), pid %d (was %d, gone %v), running %v",
			s.Port(), port, s.PID(), pid, processGone(pid), s.Running())
	}
	if data, _, err := connect(t, s).Get("/regent"); err != nil || string(data) != "kept" {
		t.Fatalf("get /regent after restart = %q, %v; want \"kept\"", data, err)
	}

	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := os.Stat(s.DataDir()); err != nil {
		t.Fatalf("data directory of a caller's Dir after Close: %v, want it kept", err)
	}
}

func TestKillAndStop(t *testing.T) {
	t.Parallel()
	s := start(t, zkserver.Options{})
	pid := s.PID()
	if err := s.Kill(); err != nil {
		t.Fatalf("kill: %v", err)
	}
	if s.Running() || !processGone(pid) {
		t.Fatalf("after Kill: Running() = %v, pid %d gone = %v", s.Running(), pid, processGone(pid))
	}
	if err := s.Kill(); err != nil {
		t.Fatalf("second kill: %v", err)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatalf("stop after kill: %v", err)
	}
	if err := s.Pause(); err == nil {
		t.Fatal("Pause of a killed server succeeded")
	}

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := s.Restart(ctx); err != nil {
		t.Fatalf("restart after kill: %v", err)
	}
	pid = s.PID()
	began := time.Now()
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	t.Logf("graceful stop took %v", time.Since(began))
	if s.Running() || !processGone(pid) {
		t.Fatalf("after Stop: Running() = %v, pid %d gone = %v", s.Running(), pid, processGone(pid))
	}
	if _, err := ruok(s.Addr(), time.Second); err == nil {
		t.Fatal("stopped server still answers ruok")
	}
}

func TestPauseResume(t *testing.T) {
	t.Parallel()
	s := start(t, zkserver.Options{})
	if err := s.Pause(); err != nil {
		t.Fatalf("pause: %v", err)
	}
	if got, err := ruok(s.Addr(), 300*time.Millisecond); err == nil {
		t.Fatalf("paused server answered ruok with %q", got)
	}
	if !s.Running() {
		t.Fatal("paused server not Running")
	}
	if err := s.Resume(); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if got, err := ruok(s.Addr(), 5*time.Second); err != nil || got != "imok" {
		t.Fatalf("ruok after resume = %q, %v; want imok", got, err)
	}
}

// syncBuffer is a bytes.Buffer safe for the server's output goroutine and
// the test to use together.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestLogWriterAndFixedPort(t *testing.T) {
	t.Parallel()
	var log syncBuffer
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := start(t, zkserver.Options{Port: port, Log: &log, MinSessionTimeout: time.Second, MaxSessionTimeout: 20 * time.Second})
	if s.Port() != port || s.LogPath() != "" {
		t.Fatalf("Port() = %d, LogPath() = %q; want %d and no log file", s.Port(), s.LogPath(), port)
	}
	if !strings.Contains(log.String(), "ZooKeeperServerMain") {
		t.Fatalf("log writer got %q, want the server's start line", log.String())
	}

	// A second server on the same fixed port fails, quoting the server's
	// output, and leaves nothing running.
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	other, err := zkserver.Start(ctx, zkserver.Options{Dir: dir, Port: port})
	if err == nil {
		other.Close()
		t.Fatal("second server on the same port started")
	}
	if !strings.Contains(strings.ToLower(err.Error()), "address already in use") {
		t.Fatalf("second server's error %q does not quote its output", err)
	}
	t.Logf("second server: %.300s", err)
}
