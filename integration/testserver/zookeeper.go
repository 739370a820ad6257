package testserver

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// ZooKeeper installation layout of the Debian "zookeeper" package.
const (
	zkDebianJar       = "/usr/share/java/zookeeper.jar"
	zkDebianConfDir   = "/etc/zookeeper/conf"
	zkSLF4JSimpleJar  = "/usr/share/java/slf4j-simple.jar"
	zkMainClass       = "org.apache.zookeeper.server.ZooKeeperServerMain"
	zkInstallHint     = "install it with `sudo scripts/install-zookeeper.sh` (or `apt-get update && apt-get install -y --no-install-recommends zookeeper`)"
	zkStartAttempts   = 3
	zkStopGrace       = 10 * time.Second
	zkSessionWait     = 15 * time.Second
	zkDefaultSession  = 10 * time.Second
	zkDefaultTickTime = 200 * time.Millisecond
)

// ZooKeeperOption changes how [StartZooKeeper] configures the server.
type ZooKeeperOption func(*zkConfig)

type zkConfig struct {
	tickTime     time.Duration
	minSession   time.Duration
	maxSession   time.Duration
	startTimeout time.Duration
	props        map[string]string
}

// WithZooKeeperTickTime sets zoo.cfg's tickTime, ZooKeeper's basic time
// unit. The default is 200 ms.
func WithZooKeeperTickTime(d time.Duration) ZooKeeperOption {
	return func(c *zkConfig) { c.tickTime = d }
}

// WithZooKeeperSessionTimeouts sets the range of session timeouts the
// server grants (minSessionTimeout and maxSessionTimeout). The defaults are
// 400 ms and 60 s.
func WithZooKeeperSessionTimeouts(minTimeout, maxTimeout time.Duration) ZooKeeperOption {
	return func(c *zkConfig) {
		c.minSession = minTimeout
		c.maxSession = maxTimeout
	}
}

// WithZooKeeperProperty adds or overrides a zoo.cfg property. Overriding
// dataDir, clientPort or clientPortAddress breaks the harness, and
// 4lw.commands.whitelist must keep ruok and stat, which it polls.
func WithZooKeeperProperty(key, value string) ZooKeeperOption {
	return func(c *zkConfig) { c.props[key] = value }
}

// WithZooKeeperStartTimeout bounds how long the server may take to start
// serving, at first and after [ZooKeeper.Restart]. The default is 30 s.
func WithZooKeeperStartTimeout(d time.Duration) ZooKeeperOption {
	return func(c *zkConfig) { c.startTimeout = d }
}

// ZooKeeper is a standalone ZooKeeper server running as a child process of
// the test. Its methods must be called from the goroutine running the test
// that started it.
type ZooKeeper struct {
	t         testing.TB
	java      string
	classpath string
	cfg       zkConfig
	dir       string
	dataDir   string
	cfgPath   string
	logPath   string
	port      int

	mu   sync.Mutex
	proc *childProcess // latest run
}

// StartZooKeeper starts a standalone ZooKeeper server from the Debian
// package (ZooKeeperServerMain on the JVM) on a free 127.0.0.1 port, with
// its zoo.cfg and data directory under t.TempDir(), and waits until it
// answers "ruok" with "imok" and serves requests. The process is killed
// and reaped by t.Cleanup; its log tail is printed if the test failed.
//
// If ZooKeeper or Java is not installed the test fails (it is never
// skipped) with a message naming the install command. ZOOKEEPER_CLASSPATH
// overrides the class path and JAVA the java binary.
func StartZooKeeper(t testing.TB, opts ...ZooKeeperOption) *ZooKeeper {
	t.Helper()
	cfg := zkConfig{
		tickTime:     zkDefaultTickTime,
		minSession:   400 * time.Millisecond,
		maxSession:   60 * time.Second,
		startTimeout: 30 * time.Second,
		props:        map[string]string{},
	}
	for _, o := range opts {
		o(&cfg)
	}
	java, classpath, err := zooKeeperCommand()
	if err != nil {
		t.Fatalf("testserver: start ZooKeeper: %v", err)
	}
	dir := t.TempDir()
	z := &ZooKeeper{
		t:         t,
		java:      java,
		classpath: classpath,
		cfg:       cfg,
		dir:       dir,
		dataDir:   filepath.Join(dir, "data"),
		cfgPath:   filepath.Join(dir, "zoo.cfg"),
		logPath:   filepath.Join(dir, "zookeeper.log"),
	}
	t.Cleanup(z.shutdown)

	for attempt := 1; attempt <= zkStartAttempts; attempt++ {
		ports, err := freePorts(1)
		if err != nil {
			t.Fatalf("testserver: start ZooKeeper: %v", err)
		}
		z.port = ports[0]
		z.mu.Lock()
		err = z.startLocked()
		z.mu.Unlock()
		if err == nil {
			return z
		}
		logs := tailFile(z.logPath, logTailBytes)
		z.mu.Lock()
		if z.proc != nil {
			_ = z.proc.kill()
		}
		z.mu.Unlock()
		if !isAddrInUse(nil, logs) || attempt == zkStartAttempts {
			t.Fatalf("testserver: start ZooKeeper: %v", err) // the log follows at cleanup
		}
		t.Logf("testserver: ZooKeeper attempt %d hit a port clash; retrying on another port", attempt)
	}
	return nil // not reached: the last attempt ends in t.Fatalf
}

// zooKeeperCommand locates java and the ZooKeeper class path.
func zooKeeperCommand() (java, classpath string, err error) {
	classpath = os.Getenv("ZOOKEEPER_CLASSPATH")
	if classpath == "" {
		if _, err := os.Stat(zkDebianJar); err != nil {
			return "", "", fmt.Errorf("ZooKeeper is not installed (%w); %s, or set ZOOKEEPER_CLASSPATH", err, zkInstallHint)
		}
		classpath = zkDebianJar + string(os.PathListSeparator) + zkDebianConfDir
		// The Debian jar ships no SLF4J binding, so the server would log
		// nothing; slf4j-simple (from libslf4j-java) makes it log to stderr.
		if _, err := os.Stat(zkSLF4JSimpleJar); err == nil {
			classpath += string(os.PathListSeparator) + zkSLF4JSimpleJar
		}
	}
	switch {
	case os.Getenv("JAVA") != "":
		java = os.Getenv("JAVA")
	case os.Getenv("JAVA_HOME") != "":
		java = filepath.Join(os.Getenv("JAVA_HOME"), "bin", "java")
	default:
		java = "java"
	}
	path, err := exec.LookPath(java)
	if err != nil {
		return "", "", fmt.Errorf("java not found for ZooKeeper (%w); %s, which also installs a JRE", err, zkInstallHint)
	}
	return path, classpath, nil
}

// writeConfig writes zoo.cfg for the current port.
func (z *ZooKeeper) writeConfig() error {
	props := map[string]string{
		"tickTime":               strconv.FormatInt(z.cfg.tickTime.Milliseconds(), 10),
		"dataDir":                z.dataDir,
		"clientPort":             strconv.Itoa(z.port),
		"clientPortAddress":      "127.0.0.1",
		"maxClientCnxns":         "0",
		"admin.enableServer":     "false",
		"4lw.commands.whitelist": "ruok,stat",
		"minSessionTimeout":      strconv.FormatInt(z.cfg.minSession.Milliseconds(), 10),
		"maxSessionTimeout":      strconv.FormatInt(z.cfg.maxSession.Milliseconds(), 10),
	}
	for k, v := range z.cfg.props {
		props[k] = v
	}
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# Written by github.com/regent-sched/regent/integration/testserver.\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, props[k])
	}
	if err := os.MkdirAll(z.dataDir, 0o700); err != nil {
		return fmt.Errorf("create ZooKeeper data dir: %w", err)
	}
	if err := os.WriteFile(z.cfgPath, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write zoo.cfg: %w", err)
	}
	return nil
}

// startLocked starts the server and waits until it serves. z.mu must be
// held.
func (z *ZooKeeper) startLocked() error {
	if err := z.writeConfig(); err != nil {
		return err
	}
	argv := []string{
		z.java,
		// Start fast and small: the tests need seconds of uptime, not peak
		// throughput.
		"-Xmx256m",
		"-XX:+UseSerialGC",
		"-XX:TieredStopAtLevel=1",
		// No /tmp/hsperfdata_* file, which SIGKILL would leave behind.
		"-XX:-UsePerfData",
		"-Djava.net.preferIPv4Stack=true",
		"-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
		"-Dorg.slf4j.simpleLogger.showDateTime=true",
		"-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
		"-Dzookeeper.log.dir=" + z.dir,
		"-Dzookeeper.root.logger=INFO,CONSOLE",
		"-cp", z.classpath,
		zkMainClass,
		z.cfgPath,
	}
	// Keep the test's JVM tuning variables from changing the server.
	p, err := startChild("ZooKeeper", argv, childEnv("JAVA_TOOL_OPTIONS=", "JDK_JAVA_OPTIONS=", "_JAVA_OPTIONS="), z.logPath)
	if err != nil {
		return err
	}
	z.proc = p
	return z.waitServingLocked()
}

// waitServingLocked polls the four-letter words until the server answers
// "imok" to ruok and its stat output shows it serving requests.
func (z *ZooKeeper) waitServingLocked() error {
	deadline := time.Now().Add(z.cfg.startTimeout)
	var last error
	for {
		if z.proc.exited() {
			return fmt.Errorf("ZooKeeper on %s exited while starting: %s", z.Addr(), z.proc.exitStatus())
		}
		last = z.probe()
		if last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ZooKeeper on %s not serving after %v: %w", z.Addr(), z.cfg.startTimeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// probe checks once that the server is up and serving.
func (z *ZooKeeper) probe() error {
	out, err := fourLetterWord(z.Addr(), "ruok", time.Second)
	if err != nil {
		return err
	}
	if out != "imok" {
		return fmt.Errorf("ruok answered %q, want \"imok\"", out)
	}
	out, err = fourLetterWord(z.Addr(), "stat", time.Second)
	if err != nil {
		return err
	}
	if !strings.Contains(out, "Mode: standalone") {
		return fmt.Errorf("stat: server not serving yet: %q", strings.TrimSpace(out))
	}
	return nil
}

// fourLetterWord sends a ZooKeeper four-letter command and returns the
// reply; the server closes the connection after replying.
func fourLetterWord(addr, cmd string, timeout time.Duration) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return "", fmt.Errorf("four-letter word %s: %w", cmd, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return "", fmt.Errorf("four-letter word %s: %w", cmd, err)
	}
	if _, err := io.WriteString(conn, cmd); err != nil {
		return "", fmt.Errorf("four-letter word %s: write: %w", cmd, err)
	}
	b, err := io.ReadAll(io.LimitReader(conn, 1<<20))
	if err != nil {
		return string(b), fmt.Errorf("four-letter word %s: read: %w", cmd, err)
	}
	return string(b), nil
}

// shutdown kills the server; it runs at t.Cleanup.
func (z *ZooKeeper) shutdown() {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.proc != nil {
		if err := z.proc.kill(); err != nil {
			z.t.Errorf("testserver: ZooKeeper cleanup: %v", err)
		}
	}
	if z.t.Failed() {
		z.t.Logf("testserver: ZooKeeper log %s (tail):\n%s", z.logPath, tailFile(z.logPath, logTailBytes))
	}
}

// Addr returns the client address, "127.0.0.1:port".
func (z *ZooKeeper) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(z.port)) }

// Servers returns the server list for zk.Connect.
func (z *ZooKeeper) Servers() []string { return []string{z.Addr()} }

// Port returns the client port.
func (z *ZooKeeper) Port() int { return z.port }

// DataDir returns the server's data directory.
func (z *ZooKeeper) DataDir() string { return z.dataDir }

// LogPath returns the file receiving the server's stdout and stderr.
func (z *ZooKeeper) LogPath() string { return z.logPath }

// PID returns the process id of the server's latest run.
func (z *ZooKeeper) PID() int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.proc.pid()
}

// Running reports whether the server process is alive (it may be paused).
func (z *ZooKeeper) Running() bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	return !z.proc.exited()
}

// Stop shuts the server down with SIGTERM and waits for it to exit,
// killing it if it takes longer than 10 s. Stopping a server that is not
// running is a no-op.
func (z *ZooKeeper) Stop() {
	z.t.Helper()
	z.mu.Lock()
	defer z.mu.Unlock()
	if err := z.proc.terminate(zkStopGrace); err != nil {
		z.t.Fatalf("testserver: stop ZooKeeper: %v", err)
	}
}

// Kill ends the server with SIGKILL, like a crash, and waits until the
// process is reaped. Killing a server that is not running is a no-op.
func (z *ZooKeeper) Kill() {
	z.t.Helper()
	z.mu.Lock()
	defer z.mu.Unlock()
	if err := z.proc.kill(); err != nil {
		z.t.Fatalf("testserver: kill ZooKeeper: %v", err)
	}
}

// Pause freezes the server with SIGSTOP: connections stay open but
// nothing is answered, so client sessions eventually time out. A client
// from [ZooKeeper.Conn] that is still open at cleanup while the server is
// paused takes up to two thirds of its session timeout to shut down.
func (z *ZooKeeper) Pause() {
	z.t.Helper()
	z.signal(syscall.SIGSTOP)
}

// Resume lets a server frozen by [ZooKeeper.Pause] continue (SIGCONT).
func (z *ZooKeeper) Resume() {
	z.t.Helper()
	z.signal(syscall.SIGCONT)
}

func (z *ZooKeeper) signal(sig syscall.Signal) {
	z.t.Helper()
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.proc.exited() {
		z.t.Fatalf("testserver: send %v to ZooKeeper: not running", sig)
	}
	if err := z.proc.signal(sig); err != nil {
		z.t.Fatalf("testserver: ZooKeeper: %v", err)
	}
}

// Restart stops the server if it is running (gracefully, as [ZooKeeper.Stop]
// does; call [ZooKeeper.Kill] first to simulate a crash), starts it again on
// the same port with the same data directory, and waits until it serves
// requests. Sessions and data survive, as with a real server restart.
func (z *ZooKeeper) Restart() {
	z.t.Helper()
	z.mu.Lock()
	defer z.mu.Unlock()
	if err := z.proc.terminate(zkStopGrace); err != nil {
		z.t.Fatalf("testserver: restart ZooKeeper: %v", err)
	}
	if err := z.startLocked(); err != nil {
		z.t.Fatalf("testserver: restart ZooKeeper: %v", err) // the log follows at cleanup
	}
}

// Conn returns a client connected to the server with an established
// session (10 s session timeout). The client logs through t.Logf and is
// closed by t.Cleanup. Connection events are discarded; use
// [ZooKeeper.ConnEvents] to see them.
func (z *ZooKeeper) Conn(t testing.TB) *zk.Conn {
	t.Helper()
	conn, _ := z.connect(t, zkDefaultSession, false)
	return conn
}

// ConnEvents is like [ZooKeeper.Conn] with the given session timeout, and
// also returns the connection's events that follow the establishment of
// the session. The channel is closed when the client is closed. Events
// not received promptly may be dropped by the zk library, as with its own
// channel.
func (z *ZooKeeper) ConnEvents(t testing.TB, sessionTimeout time.Duration) (*zk.Conn, <-chan zk.Event) {
	t.Helper()
	return z.connect(t, sessionTimeout, true)
}

func (z *ZooKeeper) connect(t testing.TB, sessionTimeout time.Duration, wantEvents bool) (*zk.Conn, <-chan zk.Event) {
	t.Helper()
	lg := &zkTestLogger{t: t}
	conn, events, err := zk.Connect(z.Servers(), sessionTimeout, zk.WithLogger(lg), zk.WithLogInfo(false))
	if err != nil {
		t.Fatalf("testserver: connect to ZooKeeper %s: %v", z.Addr(), err)
	}

	// closeConn stops the client and waits for its goroutines, which end
	// by closing events; at worst that takes one receive timeout (2/3 of
	// the session timeout) when the server is unresponsive.
	closeConn := func(drain <-chan struct{}) error {
		conn.Close()
		defer lg.stop()
		timer := time.NewTimer(sessionTimeout + 10*time.Second)
		defer timer.Stop()
		select {
		case <-drain:
			return nil
		case <-timer.C:
			return errors.New("zk client goroutines did not stop")
		}
	}

	if err := waitSession(events, zkSessionWait); err != nil {
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			for range events {
			}
		}()
		if cerr := closeConn(drained); cerr != nil {
			err = fmt.Errorf("%w (and %w)", err, cerr)
		}
		t.Fatalf("testserver: connect to ZooKeeper %s: %v", z.Addr(), err)
	}

	var out chan zk.Event
	if wantEvents {
		out = make(chan zk.Event, 16)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if out != nil {
			defer close(out)
		}
		forwardEvents(events, out, stop)
	}()
	t.Cleanup(func() {
		close(stop)
		if err := closeConn(done); err != nil {
			t.Errorf("testserver: close ZooKeeper client: %v", err)
		}
	})
	return conn, out
}

// waitSession consumes events until the session is established.
func waitSession(events <-chan zk.Event, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return errors.New("client closed before a session was established")
			}
			if ev.State == zk.StateHasSession {
				return nil
			}
			if ev.Err != nil {
				return fmt.Errorf("session event: %w", ev.Err)
			}
		case <-timer.C:
			return fmt.Errorf("no session after %v", timeout)
		}
	}
}

// forwardEvents copies events to out (discarding them if out is nil) until
// stop is closed, then discards the rest; it returns when events is closed.
func forwardEvents(events <-chan zk.Event, out chan<- zk.Event, stop <-chan struct{}) {
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			if out == nil {
				continue
			}
			select {
			case out <- ev:
			case <-stop:
				for range events {
				}
				return
			}
		case <-stop:
			for range events {
			}
			return
		}
	}
}

// zkTestLogger routes the zk library's log to t.Logf until stop is called,
// after which it drops messages: logging after a test has finished panics.
type zkTestLogger struct {
	mu      sync.Mutex
	t       testing.TB
	stopped bool
}

// Printf implements zk.Logger.
func (l *zkTestLogger) Printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.t.Logf("zk client: "+format, args...)
	}
}

func (l *zkTestLogger) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
}
