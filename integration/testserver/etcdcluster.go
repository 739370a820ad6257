package testserver

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-sched/regent/integration/childproc"

	"github.com/regent-sched/regent/integration/tb"
)

// Defaults for process-based clusters, which lose and re-elect leaders on
// purpose and therefore get more slack than the embedded server.
const (
	defaultClusterTickMs     = 50
	defaultClusterElectionMs = 500
	clusterStartAttempts     = 3
	pollInterval             = 50 * time.Millisecond
)

// EtcdCluster is an etcd cluster whose members run as child processes of
// the test.
type EtcdCluster struct {
	t       tb.TB
	cfg     etcdConfig
	members []*EtcdMember
}

// EtcdMember is one member of an [EtcdCluster]. Its methods must be called
// from the goroutine running the test that started the cluster.
type EtcdMember struct {
	t         tb.TB
	name      string
	bin       string
	dataDir   string
	logPath   string
	clientURL string
	peerURL   string
	args      []string // flags shared by every start of this member
	timeout   time.Duration

	mu          sync.Mutex
	proc        *childproc.Process // latest run; nil before the first start
	wantRunning bool               // false after Kill, true after (re)start
	stopped     bool               // SIGSTOPped and not yet SIGCONTed
}

// StartEtcdCluster starts an n-member etcd cluster (normally 1 or 3) as
// child processes on free loopback ports, each with its own data directory
// under t.TempDir(), and waits until every member reports healthy. The
// binary is built from ./etcdproc on first use. Every member process is
// killed and reaped by t.Cleanup, and the tail of each member's log is
// printed if the test failed. Heartbeat and election default to 50 ms and
// 500 ms; see [WithEtcdTiming].
func StartEtcdCluster(t tb.TB, n int, opts ...EtcdOption) *EtcdCluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("testserver: StartEtcdCluster: need at least one member, got %d", n)
	}
	opts = append([]EtcdOption{WithEtcdTiming(defaultClusterTickMs, defaultClusterElectionMs)}, opts...)
	cfg := newEtcdConfig(opts)
	bin, err := etcdBinaryPath()
	if err != nil {
		t.Fatalf("testserver: StartEtcdCluster: %v", err)
	}
	base := t.TempDir()
	c := &EtcdCluster{t: t, cfg: cfg}
	t.Cleanup(c.shutdown)

	for attempt := 1; attempt <= clusterStartAttempts; attempt++ {
		dir := filepath.Join(base, "attempt"+strconv.Itoa(attempt))
		err = c.tryStart(bin, dir, n)
		if err == nil {
			return c
		}
		logs := c.logTails()
		for _, kerr := range c.killAll() {
			t.Errorf("testserver: stop failed etcd cluster attempt: %v", kerr)
		}
		if !isAddrInUse(nil, logs) || attempt == clusterStartAttempts {
			t.Fatalf("testserver: start %d-member etcd cluster: %v", n, err) // logs follow at cleanup
		}
		t.Logf("testserver: etcd cluster attempt %d hit a port clash; retrying on other ports", attempt)
	}
	return nil // not reached: the last attempt ends in t.Fatalf
}

// tryStart creates n fresh members under dir, starts them and waits until
// they are healthy.
func (c *EtcdCluster) tryStart(bin, dir string, n int) error {
	ports, err := freePorts(2 * n)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create cluster dir: %w", err)
	}
	c.members = make([]*EtcdMember, n)
	initial := make([]string, n)
	for i := range n {
		name := "m" + strconv.Itoa(i)
		c.members[i] = &EtcdMember{
			t:         c.t,
			name:      name,
			bin:       bin,
			dataDir:   filepath.Join(dir, name+".data"),
			logPath:   filepath.Join(dir, name+".log"),
			clientURL: "http://127.0.0.1:" + strconv.Itoa(ports[2*i]),
			peerURL:   "http://127.0.0.1:" + strconv.Itoa(ports[2*i+1]),
			timeout:   c.cfg.startTimeout,
		}
		initial[i] = name + "=" + c.members[i].peerURL
	}
	token := fmt.Sprintf("testserver-%d-%d", os.Getpid(), ports[0])
	for _, m := range c.members {
		m.args = []string{
			"--name", m.name,
			"--data-dir", m.dataDir,
			"--listen-client-urls", m.clientURL,
			"--advertise-client-urls", m.clientURL,
			"--listen-peer-urls", m.peerURL,
			"--initial-advertise-peer-urls", m.peerURL,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-token", token,
			"--heartbeat-interval", strconv.FormatUint(uint64(c.cfg.tickMs), 10),
			"--election-timeout", strconv.FormatUint(uint64(c.cfg.electionMs), 10),
			// A killed process loses nothing that reached the page cache,
			// so fsync only slows the tests down.
			"--unsafe-no-fsync",
			"--logger", "zap",
			"--log-outputs", "stderr",
			"--log-level", c.cfg.logLevel,
		}
	}
	for _, m := range c.members {
		m.mu.Lock()
		err := m.startLocked(clusterStateNew)
		m.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return c.waitHealthy(c.cfg.startTimeout)
}

const (
	clusterStateNew      = "new"
	clusterStateExisting = "existing"
)

// shutdown kills every member; it runs at t.Cleanup.
func (c *EtcdCluster) shutdown() {
	for _, err := range c.killAll() {
		c.t.Errorf("testserver: etcd cluster cleanup: %v", err)
	}
	if c.t.Failed() && len(c.members) > 0 {
		c.t.Logf("testserver: etcd cluster logs (tail):\n%s", c.logTails())
	}
}

// killAll kills and reaps every member process.
func (c *EtcdCluster) killAll() []error {
	var errs []error
	for _, m := range c.members {
		m.mu.Lock()
		if m.proc != nil {
			if err := m.proc.Kill(); err != nil {
				errs = append(errs, err)
			}
		}
		m.wantRunning = false
		m.stopped = false
		m.mu.Unlock()
	}
	return errs
}

// logTails returns the tail of every member's log file.
func (c *EtcdCluster) logTails() string {
	var b strings.Builder
	for _, m := range c.members {
		fmt.Fprintf(&b, "---- etcd member %s (%s) ----\n%s\n", m.name, m.logPath, tailFile(m.logPath, logTailBytes))
	}
	return b.String()
}

// Members returns the cluster's members, in a fixed order.
func (c *EtcdCluster) Members() []*EtcdMember {
	return append([]*EtcdMember(nil), c.members...)
}

// Member returns the i-th member.
func (c *EtcdCluster) Member(i int) *EtcdMember { return c.members[i] }

// Endpoints returns the client URLs of all members, running or not.
func (c *EtcdCluster) Endpoints() []string {
	eps := make([]string, len(c.members))
	for i, m := range c.members {
		eps[i] = m.clientURL
	}
	return eps
}

// Client returns a client for all members' endpoints. It is closed by
// t.Cleanup, before the cluster is torn down.
func (c *EtcdCluster) Client(t tb.TB) *clientv3.Client {
	t.Helper()
	return newEtcdClient(t, c.Endpoints())
}

// WaitHealthy waits until every member that is running (started and
// neither killed nor stopped) answers its /health endpoint with
// "health": "true", which requires an elected leader and a working quorum.
// It fails the test after timeout, or at once if a member that should be
// running has exited.
func (c *EtcdCluster) WaitHealthy(timeout time.Duration) {
	c.t.Helper()
	if err := c.waitHealthy(timeout); err != nil {
		c.t.Fatalf("testserver: %v", err)
	}
}

// WaitLeader waits until exactly one running member reports itself as
// leader and returns it. It fails the test after timeout.
func (c *EtcdCluster) WaitLeader(timeout time.Duration) *EtcdMember {
	c.t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for {
		var leaders []*EtcdMember
		var errs []string
		for _, m := range c.members {
			if ok, err := m.checkAlive(); err != nil {
				c.t.Fatalf("testserver: wait for etcd leader: %v", err)
			} else if !ok {
				continue
			}
			isLeader, err := m.isLeader(hc)
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			if isLeader {
				leaders = append(leaders, m)
			}
		}
		if len(leaders) == 1 {
			return leaders[0]
		}
		last = fmt.Sprintf("%d members claim leadership; errors: %v", len(leaders), errs)
		if time.Now().After(deadline) {
			c.t.Fatalf("testserver: no etcd leader after %v: %s", timeout, last)
		}
		time.Sleep(pollInterval)
	}
}

func (c *EtcdCluster) waitHealthy(timeout time.Duration) error {
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		var unhealthy []string
		running := 0
		for _, m := range c.members {
			ok, err := m.checkAlive()
			if err != nil {
				return fmt.Errorf("wait for healthy etcd cluster: %w", err)
			}
			if !ok {
				continue
			}
			running++
			if err := m.health(hc); err != nil {
				unhealthy = append(unhealthy, err.Error())
			}
		}
		if running == 0 {
			return errors.New("wait for healthy etcd cluster: no member is running")
		}
		if len(unhealthy) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd cluster not healthy after %v: %s", timeout, strings.Join(unhealthy, "; "))
		}
		time.Sleep(pollInterval)
	}
}

// Name returns the member name (m0, m1, ...).
func (m *EtcdMember) Name() string { return m.name }

// ClientURL returns the member's client URL.
func (m *EtcdMember) ClientURL() string { return m.clientURL }

// Endpoints returns the member's client URL as a one-element slice, for a
// clientv3.Config that must talk to this member only.
func (m *EtcdMember) Endpoints() []string { return []string{m.clientURL} }

// PeerURL returns the member's raft peer URL.
func (m *EtcdMember) PeerURL() string { return m.peerURL }

// DataDir returns the member's data directory.
func (m *EtcdMember) DataDir() string { return m.dataDir }

// LogPath returns the file receiving the member's stdout and stderr.
func (m *EtcdMember) LogPath() string { return m.logPath }

// Client returns a client that talks to this member only. It is closed by
// t.Cleanup.
func (m *EtcdMember) Client(t tb.TB) *clientv3.Client {
	t.Helper()
	return newEtcdClient(t, m.Endpoints())
}

// PID returns the process id of the member's latest run.
func (m *EtcdMember) PID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc == nil {
		return 0
	}
	return m.proc.PID()
}

// Running reports whether the member process is alive and not stopped.
func (m *EtcdMember) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.proc != nil && !m.proc.Exited() && !m.stopped
}

// Kill sends SIGKILL to the member and waits until the process is reaped.
// Killing a member that is not running is a no-op.
func (m *EtcdMember) Kill() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.wantRunning = false
	m.stopped = false
	if m.proc == nil {
		return
	}
	if err := m.proc.Kill(); err != nil {
		m.t.Fatalf("testserver: kill etcd member %s: %v", m.name, err)
	}
}

// Stop freezes the member with SIGSTOP and waits until all its threads
// have stopped. It keeps its sockets open but answers nothing until
// [EtcdMember.Cont].
func (m *EtcdMember) Stop() {
	m.t.Helper()
	m.control("stop", (*childproc.Process).Pause, true)
}

// Cont resumes a member frozen by [EtcdMember.Stop] with SIGCONT.
func (m *EtcdMember) Cont() {
	m.t.Helper()
	m.control("cont", (*childproc.Process).Resume, false)
}

// control applies f to the running member process and records whether it
// is now stopped.
func (m *EtcdMember) control(op string, f func(*childproc.Process) error, stopped bool) {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc == nil || m.proc.Exited() {
		m.t.Fatalf("testserver: %s etcd member %s: not running", op, m.name)
	}
	if err := f(m.proc); err != nil {
		m.t.Fatalf("testserver: %s etcd member %s: %v", op, m.name, err)
	}
	m.stopped = stopped
}

// Restart starts the member again from its data directory with the same
// name, ports and flags (and --initial-cluster-state existing), killing
// the current process first if it is still alive. It returns once the
// member listens on its client port; a restarted member can only become
// healthy when a quorum is available, so use [EtcdCluster.WaitHealthy] or
// [EtcdCluster.WaitLeader] to wait for that.
func (m *EtcdMember) Restart() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc != nil {
		if err := m.proc.Kill(); err != nil {
			m.t.Fatalf("testserver: restart etcd member %s: %v", m.name, err)
		}
	}
	m.stopped = false
	if err := m.startLocked(clusterStateExisting); err != nil {
		m.t.Fatalf("testserver: restart etcd member %s: %v", m.name, err)
	}
	if err := m.waitListeningLocked(); err != nil {
		m.t.Fatalf("testserver: restart etcd member %s: %v", m.name, err)
	}
}

// startLocked starts a new run of the member. m.mu must be held.
func (m *EtcdMember) startLocked(state string) error {
	argv := append([]string{m.bin}, m.args...)
	argv = append(argv, "--initial-cluster-state", state)
	f, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start etcd member %s: open log: %w", m.name, err)
	}
	// The child has its own copy of the descriptor after Start.
	defer f.Close()
	fmt.Fprintf(f, "==== %s: starting %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(argv, " "))
	// etcd reads ETCD_* variables as flags; keep the test's out.
	p, err := childproc.Start(childproc.Config{Argv: argv, Env: childproc.Environ("ETCD_"), Output: f})
	if err != nil {
		return fmt.Errorf("start etcd member %s: %w", m.name, err)
	}
	m.proc = p
	m.wantRunning = true
	m.stopped = false
	return nil
}

// waitListeningLocked waits until the client port accepts connections.
func (m *EtcdMember) waitListeningLocked() error {
	u, err := url.Parse(m.clientURL)
	if err != nil {
		return fmt.Errorf("parse client URL: %w", err)
	}
	deadline := time.Now().Add(m.timeout)
	for {
		if m.proc.Exited() {
			return fmt.Errorf("process exited while starting: %s", m.proc.ExitStatus())
		}
		conn, err := net.DialTimeout("tcp", u.Host, 500*time.Millisecond)
		if err == nil {
			return conn.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("client port %s not listening after %v: %w", u.Host, m.timeout, err)
		}
		time.Sleep(pollInterval)
	}
}

// checkAlive reports whether the member should answer requests now. It
// returns an error if the member should be running but has exited.
func (m *EtcdMember) checkAlive() (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.wantRunning || m.proc == nil {
		return false, nil
	}
	if m.proc.Exited() {
		return false, fmt.Errorf("etcd member %s exited unexpectedly: %s", m.name, m.proc.ExitStatus())
	}
	return !m.stopped, nil
}

// health queries the member's /health endpoint.
func (m *EtcdMember) health(hc *http.Client) error {
	resp, err := hc.Get(m.clientURL + "/health")
	if err != nil {
		return fmt.Errorf("%s: %w", m.name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return fmt.Errorf("%s: read /health: %w", m.name, err)
	}
	var h struct {
		Health string `json:"health"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(body, &h); err != nil {
		return fmt.Errorf("%s: decode /health %q: %w", m.name, body, err)
	}
	if resp.StatusCode != http.StatusOK || h.Health != "true" {
		return fmt.Errorf("%s: /health: %s %s", m.name, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// isLeader reads the etcd_server_is_leader gauge from the member's
// /metrics endpoint.
func (m *EtcdMember) isLeader(hc *http.Client) (bool, error) {
	resp, err := hc.Get(m.clientURL + "/metrics")
	if err != nil {
		return false, fmt.Errorf("%s: %w", m.name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("%s: /metrics: %s", m.name, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "etcd_server_is_leader "); ok {
			return strings.TrimSpace(v) == "1", nil
		}
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("%s: read /metrics: %w", m.name, err)
	}
	return false, fmt.Errorf("%s: /metrics has no etcd_server_is_leader", m.name)
}
