package zkserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/regent-sched/regent/integration/childproc"
)

const (
	// startAttempts is how many free ports Start tries when Options.Port
	// is 0 and another process takes the chosen port first.
	startAttempts = 3
	// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
	stopGrace = 10 * time.Second
	// outputTail is how many bytes of output a start error quotes.
	outputTail = 4 << 10
)

// errClosed is returned by Restart after Close.
var errClosed = errors.New("server closed")

// Server is a ZooKeeper server process started by [Start]. Its methods are
// safe for concurrent use; those that change the process run one at a time.
type Server struct {
	opts      Options // with defaults applied
	java      string
	classpath string
	dir       string
	ownDir    bool // dir was created by Start and is removed by Close
	dataDir   string
	cfgPath   string
	logPath   string    // "" when Options.Log is set
	logFile   *os.File  // the file at logPath; closed by Close
	log       io.Writer // receives the output of every run
	port      int

	op     sync.Mutex // serialises the methods that change the process
	closed bool       // guarded by op

	mu   sync.Mutex         // guards proc
	proc *childproc.Process // latest run
}

// Start starts a standalone ZooKeeper server as configured by opts and
// waits until it serves requests, for at most opts.StartTimeout or until
// ctx is done; ctx bounds only the start. The server runs until
// [Server.Close]. If ZooKeeper or Java is missing the error wraps
// [ErrNotInstalled]; if the server fails to start, the error quotes the
// end of its output, and nothing is left running.
//
// With opts.Ensemble set, Start starts one member of an ensemble, which
// serves requests only once a quorum of members is up: Start returns only
// when enough other members are started concurrently (from other
// goroutines or processes). [StartEnsemble] does that for a whole
// ensemble on loopback.
func Start(ctx context.Context, opts Options) (*Server, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("start ZooKeeper: %w", err)
	}
	java, classpath, err := command()
	if err != nil {
		return nil, fmt.Errorf("start ZooKeeper: %w", err)
	}
	s := &Server{opts: opts, java: java, classpath: classpath}
	if err := s.prepare(); err != nil {
		return nil, fmt.Errorf("start ZooKeeper: %w", errors.Join(err, s.release()))
	}
	fixed := opts.clientPort()
	for attempt := 1; ; attempt++ {
		s.port = fixed
		if s.port == 0 {
			if s.port, err = freePort(); err != nil {
				return nil, fmt.Errorf("start ZooKeeper: %w", errors.Join(err, s.release()))
			}
		}
		err = s.run(ctx)
		if err == nil {
			return s, nil
		}
		clash := s.proc != nil && strings.Contains(strings.ToLower(s.proc.Tail()), "address already in use")
		if fixed != 0 || !clash || attempt == startAttempts {
			return nil, fmt.Errorf("start ZooKeeper: %w", errors.Join(err, s.release()))
		}
		fmt.Fprintf(s.log, "==== port %d was taken; retrying on another port\n", s.port)
	}
}

// prepare creates the server's directories and opens its log.
func (s *Server) prepare() error {
	s.dir = s.opts.Dir
	if s.dir == "" {
		dir, err := os.MkdirTemp("", "zkserver-")
		if err != nil {
			return fmt.Errorf("create directory: %w", err)
		}
		s.dir, s.ownDir = dir, true
	}
	s.dataDir = filepath.Join(s.dir, "data")
	s.cfgPath = filepath.Join(s.dir, "zoo.cfg")
	if err := os.MkdirAll(s.dataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	s.log = s.opts.Log
	if s.log == nil {
		s.logPath = filepath.Join(s.dir, "zookeeper.log")
		f, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("open log: %w", err)
		}
		s.logFile, s.log = f, f
	}
	return nil
}

// release closes the log and removes the directory if Start created it.
func (s *Server) release() error {
	var errs []error
	if s.logFile != nil {
		if err := s.logFile.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close log: %w", err))
		}
	}
	if s.ownDir {
		if err := os.RemoveAll(s.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove directory: %w", err))
		}
	}
	return errors.Join(errs...)
}

// ensemble reports whether the server is an ensemble member.
func (s *Server) ensemble() bool { return len(s.opts.Ensemble) > 0 }

// run writes zoo.cfg (and an ensemble member's myid), starts the server
// and waits until it serves. On failure the new process is killed and the
// error quotes its output.
func (s *Server) run(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.WriteFile(s.cfgPath, s.opts.zooCfg(s.dataDir, s.port), 0o600); err != nil {
		return fmt.Errorf("write zoo.cfg: %w", err)
	}
	mainClass, modes := serverMainClass, standaloneModes
	if s.ensemble() {
		mainClass, modes = quorumMainClass, ensembleModes
		myid := filepath.Join(s.dataDir, "myid")
		if err := os.WriteFile(myid, []byte(strconv.Itoa(s.opts.MyID)+"\n"), 0o600); err != nil {
			return fmt.Errorf("write myid: %w", err)
		}
	}
	argv := []string{
		s.java,
		// Start fast and small: a development server needs seconds of
		// uptime, not peak throughput.
		"-Xmx256m",
		"-XX:+UseSerialGC",
		"-XX:TieredStopAtLevel=1",
		// No /tmp/hsperfdata_* file, which SIGKILL would leave behind.
		"-XX:-UsePerfData",
		"-Djava.net.preferIPv4Stack=true",
		"-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
		"-Dorg.slf4j.simpleLogger.showDateTime=true",
		"-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
		"-Dzookeeper.log.dir=" + s.dir,
		"-Dzookeeper.root.logger=INFO,CONSOLE",
		"-cp", s.classpath,
		mainClass,
		s.cfgPath,
	}
	fmt.Fprintf(s.log, "==== %s: starting %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(argv, " "))
	p, err := childproc.Start(childproc.Config{
		Argv: argv,
		// Keep the caller's JVM tuning variables from changing the server.
		Env:       childproc.Environ("JAVA_TOOL_OPTIONS=", "JDK_JAVA_OPTIONS=", "_JAVA_OPTIONS="),
		Output:    s.log,
		TailBytes: outputTail,
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	err = waitServing(ctx, p, s.port, modes, s.opts.StartTimeout)
	if err == nil {
		return nil
	}
	if kerr := p.Kill(); kerr != nil {
		err = errors.Join(err, kerr)
	}
	if s.ensemble() {
		err = fmt.Errorf("ensemble member %d on %s: %w", s.opts.MyID, s.Addr(), err)
	} else {
		err = fmt.Errorf("server on %s: %w", s.Addr(), err)
	}
	if tail := p.Tail(); tail != "" {
		err = fmt.Errorf("%w\nserver output (tail):\n%s", err, tail)
	}
	return err
}

// current returns the latest run.
func (s *Server) current() *childproc.Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

// Addr returns the client address, "127.0.0.1:port".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Servers returns the server list for a ZooKeeper client. For an ensemble
// member it holds this member only; [Ensemble.Servers] lists them all.
func (s *Server) Servers() []string { return []string{s.Addr()} }

// MyID returns the server's id in its ensemble, or 0 for a standalone
// server.
func (s *Server) MyID() int { return s.opts.MyID }

// Mode asks the server (with the four-letter word stat) what part it
// plays: "standalone", or "leader" or "follower" in an ensemble. It
// returns "" when the server runs but does not serve requests, as an
// ensemble member without a quorum (or one that is just losing it) does,
// and an error when the server cannot be reached or does not answer, for
// instance because it is not running or paused.
func (s *Server) Mode(ctx context.Context) (string, error) {
	out, err := fourLetterWord(ctx, s.Addr(), "stat")
	if err == nil {
		var mode string
		if mode, err = statMode(out); err == nil {
			return mode, nil
		}
	}
	return "", fmt.Errorf("ZooKeeper mode on %s: %w", s.Addr(), err)
}

// Port returns the client port.
func (s *Server) Port() int { return s.port }

// DataDir returns the server's data directory.
func (s *Server) DataDir() string { return s.dataDir }

// LogPath returns the file receiving the server's output, or "" when
// [Options.Log] receives it.
func (s *Server) LogPath() string { return s.logPath }

// PID returns the process id of the server's latest run.
func (s *Server) PID() int { return s.current().PID() }

// Running reports whether the server process is alive (it may be paused).
func (s *Server) Running() bool { return !s.current().Exited() }

// Stop shuts the server down with SIGTERM and waits for it to exit,
// killing it after 10 s or when ctx is done. Stopping a server that is not
// running does nothing.
func (s *Server) Stop(ctx context.Context) error {
	s.op.Lock()
	defer s.op.Unlock()
	if err := s.current().Stop(ctx, stopGrace); err != nil {
		return fmt.Errorf("stop ZooKeeper: %w", err)
	}
	return nil
}

// Kill ends the server with SIGKILL, like a crash, and waits until the
// process is reaped. Killing a server that is not running does nothing.
func (s *Server) Kill() error {
	s.op.Lock()
	defer s.op.Unlock()
	if err := s.current().Kill(); err != nil {
		return fmt.Errorf("kill ZooKeeper: %w", err)
	}
	return nil
}

// Pause freezes the server with SIGSTOP and (on Linux) waits until all its
// threads have stopped: connections stay open but nothing is answered, so
// client sessions eventually time out.
func (s *Server) Pause() error {
	return s.whileRunning("pause", (*childproc.Process).Pause)
}

// Resume lets a server frozen by [Server.Pause] continue (SIGCONT).
func (s *Server) Resume() error {
	return s.whileRunning("resume", (*childproc.Process).Resume)
}

// whileRunning applies f to the running process.
func (s *Server) whileRunning(op string, f func(*childproc.Process) error) error {
	s.op.Lock()
	defer s.op.Unlock()
	p := s.current()
	if p.Exited() {
		return fmt.Errorf("%s ZooKeeper: not running", op)
	}
	if err := f(p); err != nil {
		return fmt.Errorf("%s ZooKeeper: %w", op, err)
	}
	return nil
}

// Restart stops the server if it is running (gracefully, as [Server.Stop]
// does; call [Server.Kill] first to simulate a crash), starts it again on
// the same port with the same data directory, and waits until it serves
// requests, for at most [Options.StartTimeout] or until ctx is done.
// Sessions and data survive, as with any ZooKeeper restart. If the server
// fails to start, it is left stopped.
//
// An ensemble member serves requests only within a quorum. Restart of a
// member rejoins a quorum that is up; while the quorum is lost, it waits
// until enough other members run again, and fails after StartTimeout if
// they do not, so restarting the members one after the other cannot
// restore a lost quorum. Restart the members that are needed for a
// quorum together with [Ensemble.Restart].
func (s *Server) Restart(ctx context.Context) error {
	s.op.Lock()
	defer s.op.Unlock()
	if s.closed {
		return fmt.Errorf("restart ZooKeeper: %w", errClosed)
	}
	if err := s.current().Stop(ctx, stopGrace); err != nil {
		return fmt.Errorf("restart ZooKeeper: %w", err)
	}
	if err := s.run(ctx); err != nil {
		return fmt.Errorf("restart ZooKeeper: %w", err)
	}
	return nil
}

// Close stops the server as [Server.Stop] does, closes its log file, and
// removes its directory if [Start] created it. Later calls do nothing.
func (s *Server) Close() error {
	s.op.Lock()
	defer s.op.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.current().Stop(context.Background(), stopGrace)
	if err != nil {
		err = fmt.Errorf("stop: %w", err)
	}
	if err := errors.Join(err, s.release()); err != nil {
		return fmt.Errorf("close ZooKeeper: %w", err)
	}
	return nil
}
