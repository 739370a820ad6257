package testserver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/regent-sched/regent/integration/zkserver"

	"github.com/regent-sched/regent/integration/tb"

	"github.com/regent-sched/regent/internal/zkdial"
)

// ZooKeeper client defaults for [ZooKeeper.Conn] and [ZooKeeper.ConnEvents].
const (
	zkSessionWait    = 15 * time.Second
	zkDefaultSession = 10 * time.Second
	// zkHandshakeMax bounds the wait for the server's answer to a client's
	// connect request. A local server answers in milliseconds; one that is
	// restarting can accept a connection and never answer it.
	zkHandshakeMax = 2 * time.Second
)

// ZooKeeperOption changes how [StartZooKeeper] configures the server, or
// [StartZooKeeperEnsemble] every member.
type ZooKeeperOption func(*zkserver.Options)

// WithZooKeeperTickTime sets zoo.cfg's tickTime, ZooKeeper's basic time
// unit. The default is 200 ms.
func WithZooKeeperTickTime(d time.Duration) ZooKeeperOption {
	return func(o *zkserver.Options) { o.TickTime = d }
}

// WithZooKeeperSessionTimeouts sets the range of session timeouts the
// server grants (minSessionTimeout and maxSessionTimeout). The defaults are
// 400 ms and 60 s.
func WithZooKeeperSessionTimeouts(minTimeout, maxTimeout time.Duration) ZooKeeperOption {
	return func(o *zkserver.Options) {
		o.MinSessionTimeout = minTimeout
		o.MaxSessionTimeout = maxTimeout
	}
}

// WithZooKeeperProperty adds or overrides a zoo.cfg property. dataDir,
// clientPort and clientPortAddress cannot be set (nor, in an ensemble,
// server.N), and 4lw.commands.whitelist must keep ruok and stat, which the
// harness polls.
func WithZooKeeperProperty(key, value string) ZooKeeperOption {
	return func(o *zkserver.Options) {
		if o.Properties == nil {
			o.Properties = map[string]string{}
		}
		o.Properties[key] = value
	}
}

// WithZooKeeperStartTimeout bounds how long the server may take to start
// serving, at first and after [ZooKeeper.Restart] (or, in an ensemble,
// [ZooKeeperEnsemble.Restart]). The default is 30 s.
func WithZooKeeperStartTimeout(d time.Duration) ZooKeeperOption {
	return func(o *zkserver.Options) { o.StartTimeout = d }
}

// ZooKeeper is a ZooKeeper server running as a child process of the test,
// a [zkserver.Server] that fails the test instead of returning errors:
// a standalone server from [StartZooKeeper], or a member of a
// [ZooKeeperEnsemble]. Its methods must be called from the goroutine
// running the test that started it.
type ZooKeeper struct {
	t   tb.TB
	srv *zkserver.Server
}

// StartZooKeeper starts a standalone ZooKeeper server from the Debian
// package (ZooKeeperServerMain on the JVM) with [zkserver.Start] on a free
// 127.0.0.1 port, with its zoo.cfg and data directory under t.TempDir(),
// and waits until it answers "ruok" with "imok" and serves requests. The
// process is killed and reaped by t.Cleanup; its log tail is printed if the
// test failed.
//
// If ZooKeeper or Java is not installed the test fails (it is never
// skipped) with a message naming the install command. ZOOKEEPER_CLASSPATH
// overrides the class path and JAVA the java binary.
func StartZooKeeper(t tb.TB, opts ...ZooKeeperOption) *ZooKeeper {
	t.Helper()
	srv, err := zkserver.Start(context.Background(), zooKeeperOptions(t, opts))
	if err != nil {
		t.Fatalf("testserver: %v", err) // the error quotes the server's output
	}
	z := &ZooKeeper{t: t, srv: srv}
	t.Cleanup(z.shutdown)
	return z
}

// zooKeeperOptions returns the harness's defaults, with the server's files
// under t.TempDir(), changed by opts.
func zooKeeperOptions(t tb.TB, opts []ZooKeeperOption) zkserver.Options {
	o := zkserver.Options{
		Dir:               t.TempDir(),
		TickTime:          200 * time.Millisecond,
		MinSessionTimeout: 400 * time.Millisecond,
		MaxSessionTimeout: 60 * time.Second,
		StartTimeout:      30 * time.Second,
	}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// shutdown kills the server; it runs at t.Cleanup.
func (z *ZooKeeper) shutdown() {
	if err := z.srv.Kill(); err != nil {
		z.t.Errorf("testserver: ZooKeeper cleanup: %v", err)
	}
	if z.t.Failed() {
		z.t.Logf("testserver: ZooKeeper log %s (tail):\n%s", z.LogPath(), tailFile(z.LogPath(), logTailBytes))
	}
	if err := z.srv.Close(); err != nil {
		z.t.Errorf("testserver: ZooKeeper cleanup: %v", err)
	}
}

// Addr returns the client address, "127.0.0.1:port".
func (z *ZooKeeper) Addr() string { return z.srv.Addr() }

// Servers returns the server list for zk.Connect: this server only, also
// for an ensemble member ([ZooKeeperEnsemble.Servers] lists them all).
func (z *ZooKeeper) Servers() []string { return z.srv.Servers() }

// MyID returns the server's id in its ensemble, or 0 for a standalone
// server.
func (z *ZooKeeper) MyID() int { return z.srv.MyID() }

// Mode returns what the server says it is: "standalone", or "leader" or
// "follower" in an ensemble, or "" while it runs but does not serve
// requests (an ensemble member without a quorum). It fails the test if
// the server does not answer within 2 s: if it is killed or paused, say.
func (z *ZooKeeper) Mode() string {
	z.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	mode, err := z.srv.Mode(ctx)
	if err != nil {
		z.t.Fatalf("testserver: %v", err)
	}
	return mode
}

// Port returns the client port.
func (z *ZooKeeper) Port() int { return z.srv.Port() }

// DataDir returns the server's data directory.
func (z *ZooKeeper) DataDir() string { return z.srv.DataDir() }

// LogPath returns the file receiving the server's stdout and stderr.
func (z *ZooKeeper) LogPath() string { return z.srv.LogPath() }

// PID returns the process id of the server's latest run.
func (z *ZooKeeper) PID() int { return z.srv.PID() }

// Running reports whether the server process is alive (it may be paused).
func (z *ZooKeeper) Running() bool { return z.srv.Running() }

// Stop shuts the server down with SIGTERM and waits for it to exit,
// killing it if it takes longer than 10 s. Stopping a server that is not
// running is a no-op.
func (z *ZooKeeper) Stop() {
	z.t.Helper()
	if err := z.srv.Stop(context.Background()); err != nil {
		z.t.Fatalf("testserver: %v", err)
	}
}

// Kill ends the server with SIGKILL, like a crash, and waits until the
// process is reaped. Killing a server that is not running is a no-op.
func (z *ZooKeeper) Kill() {
	z.t.Helper()
	if err := z.srv.Kill(); err != nil {
		z.t.Fatalf("testserver: %v", err)
	}
}

// Pause freezes the server with SIGSTOP: connections stay open but
// nothing is answered, so client sessions eventually time out. A client
// from [ZooKeeper.Conn] that is still open at cleanup while the server is
// paused takes up to two thirds of its session timeout to shut down.
func (z *ZooKeeper) Pause() {
	z.t.Helper()
	if err := z.srv.Pause(); err != nil {
		z.t.Fatalf("testserver: %v", err)
	}
}

// Resume lets a server frozen by [ZooKeeper.Pause] continue (SIGCONT).
func (z *ZooKeeper) Resume() {
	z.t.Helper()
	if err := z.srv.Resume(); err != nil {
		z.t.Fatalf("testserver: %v", err)
	}
}

// Restart stops the server if it is running (gracefully, as [ZooKeeper.Stop]
// does; call [ZooKeeper.Kill] first to simulate a crash), starts it again on
// the same port with the same data directory, and waits until it serves
// requests. Sessions and data survive, as with a real server restart.
//
// An ensemble member serves only within a quorum: Restart rejoins a
// quorum that is up, but when the member is needed to restore the quorum
// it waits in vain for the others. Restart such members together with
// [ZooKeeperEnsemble.Restart].
func (z *ZooKeeper) Restart() {
	z.t.Helper()
	if err := z.srv.Restart(context.Background()); err != nil {
		z.t.Fatalf("testserver: %v", err) // the error quotes the server's output
	}
}

// Conn returns a client connected to the server (to this server only,
// also for an ensemble member) with an established session (10 s session
// timeout). The client logs through t.Logf and is closed by t.Cleanup.
// Connection events are discarded; use [ZooKeeper.ConnEvents] to see them.
//
// The client gives up on a connection whose connect request the server
// has not answered within 2 s (or the session timeout, if shorter) and
// dials again, so that a server that accepts connections while it is
// still restarting costs a reconnecting client seconds, not the minute
// (ten receive timeouts) go-zookeeper waits by default.
func (z *ZooKeeper) Conn(t tb.TB) *zk.Conn {
	t.Helper()
	conn, _ := z.connect(t, zkDefaultSession, false)
	return conn
}

// ConnEvents is like [ZooKeeper.Conn] with the given session timeout, and
// also returns the connection's events that follow the establishment of
// the session. The channel is closed when the client is closed. Events
// not received promptly may be dropped by the zk library, as with its own
// channel.
func (z *ZooKeeper) ConnEvents(t tb.TB, sessionTimeout time.Duration) (*zk.Conn, <-chan zk.Event) {
	t.Helper()
	return z.connect(t, sessionTimeout, true)
}

func (z *ZooKeeper) connect(t tb.TB, sessionTimeout time.Duration, wantEvents bool) (*zk.Conn, <-chan zk.Event) {
	t.Helper()
	return zkConnect(t, z.Servers(), sessionTimeout, wantEvents)
}

// zkConnect returns a client of servers with an established session, as
// [ZooKeeper.ConnEvents] describes; events is nil unless wantEvents.
func zkConnect(t tb.TB, servers []string, sessionTimeout time.Duration, wantEvents bool) (*zk.Conn, <-chan zk.Event) {
	t.Helper()
	lg := &zkTestLogger{t: t}
	limit := min(sessionTimeout/time.Duration(len(servers)), zkHandshakeMax)
	conn, events, err := zk.Connect(servers, sessionTimeout,
		zk.WithDialer(zkdial.Handshake(limit)), zk.WithLogger(lg), zk.WithLogInfo(false))
	if err != nil {
		t.Fatalf("testserver: connect to ZooKeeper %s: %v", strings.Join(servers, ","), err)
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
		t.Fatalf("testserver: connect to ZooKeeper %s: %v", strings.Join(servers, ","), err)
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
	t       tb.TB
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
