package zkserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// pickMembers chooses the ports of an ensemble's members; tests replace
// it to provoke a port clash.
var pickMembers = freeMembers

// maxLogLine is how much of a line without a newline an ensemble's shared
// [Options.Log] buffers before passing it on anyway.
const maxLogLine = 64 << 10

// Ensemble is a replicated ZooKeeper ensemble started by [StartEnsemble]:
// every member is a [Server] running QuorumPeerMain on 127.0.0.1, which
// can be stopped, killed, paused and restarted on its own. The ensemble
// serves requests while a quorum (a majority of its members) is up. Its
// methods are safe for concurrent use.
type Ensemble struct {
	members []*Server
	logs    []*lineWriter // one per member when Options.Log is set

	closeOnce sync.Once
	closeErr  error
}

// StartEnsemble starts an ensemble of n ZooKeeper servers (normally 3) on
// free loopback ports (on Linux, below the kernel's ephemeral port range,
// so that the ports of a member that is down are not handed to other
// sockets meanwhile), configured by opts as [Start] configures one
// server, and waits until every member serves requests, for at most
// opts.StartTimeout or until ctx is done; ctx bounds only the start.
// StartEnsemble chooses the members' ports and ids itself, so opts.Port,
// opts.MyID and opts.Ensemble must be unset.
//
// The members start concurrently, since none of them serves before a
// quorum is up. Member i (from 1) lives under opts.Dir/member-i, or, when
// opts.Dir is empty, in a temporary directory of its own that
// [Ensemble.Close] removes. When opts.Log is set, it receives the output
// of every member, line by line, each line prefixed with "zk<i>: ".
//
// If a member fails to start, every member is killed, what StartEnsemble
// created is removed, and the error quotes the end of that member's
// output; if the failure was a port taken by another process first, the
// whole ensemble is tried again on other ports, three times at most. If
// ZooKeeper or Java is missing the error wraps [ErrNotInstalled].
func StartEnsemble(ctx context.Context, n int, opts Options) (*Ensemble, error) {
	fail := func(err error) (*Ensemble, error) {
		return nil, fmt.Errorf("start ZooKeeper ensemble: %w", err)
	}
	switch {
	case n < 1:
		return fail(fmt.Errorf("%d members: want at least 1", n))
	case opts.Port != 0:
		return fail(fmt.Errorf("port %d is set, but StartEnsemble chooses the ports; leave Port zero", opts.Port))
	case opts.MyID != 0:
		return fail(fmt.Errorf("MyID %d is set, but StartEnsemble numbers the members; leave MyID zero", opts.MyID))
	case len(opts.Ensemble) != 0:
		return fail(fmt.Errorf("%d Ensemble members are set, but StartEnsemble makes up the ensemble; leave Ensemble empty", len(opts.Ensemble)))
	}
	opts = opts.withDefaults()
	members, err := pickMembers(n)
	if err != nil {
		return fail(err)
	}
	// The members' options differ only in MyID and Dir, so checking one
	// checks them all, before anything is created.
	if err := memberOptions(opts, members, 1).validate(); err != nil {
		return fail(err)
	}
	java, classpath, err := command()
	if err != nil {
		return fail(err)
	}
	var shared *syncWriter
	if opts.Log != nil {
		shared = &syncWriter{w: opts.Log}
	}
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			if members, err = pickMembers(n); err != nil {
				return fail(err)
			}
		}
		e, clash, err := startMembers(ctx, opts, members, java, classpath, shared, attempt < startAttempts)
		if err == nil {
			return e, nil
		}
		if !clash || attempt == startAttempts {
			return fail(err)
		}
	}
}

// freeMembers picks distinct free loopback ports for n members.
func freeMembers(n int) ([]Member, error) {
	ports, err := ensemblePorts(3 * n)
	if err != nil {
		return nil, err
	}
	members := make([]Member, n)
	for i := range members {
		members[i] = Member{ClientPort: ports[3*i], PeerPort: ports[3*i+1], ElectionPort: ports[3*i+2]}
	}
	return members, nil
}

// memberOptions returns opts for the member with the given id.
func memberOptions(opts Options, members []Member, id int) Options {
	opts.Ensemble = slices.Clone(members)
	opts.MyID = id
	if opts.Dir != "" {
		opts.Dir = filepath.Join(opts.Dir, "member-"+strconv.Itoa(id))
	}
	return opts
}

// startMembers makes one attempt at starting the ensemble: it prepares
// every member, runs them all concurrently and waits until each serves.
// On failure it kills and releases every member, returns the error of the
// member that failed first, and reports whether a member found a port
// taken, which StartEnsemble retries if mayRetry.
func startMembers(ctx context.Context, opts Options, members []Member, java, classpath string, shared *syncWriter, mayRetry bool) (*Ensemble, bool, error) {
	e := &Ensemble{}
	for i := range members {
		o := memberOptions(opts, members, i+1)
		if shared != nil {
			lw := &lineWriter{prefix: "zk" + strconv.Itoa(i+1) + ": ", out: shared}
			o.Log = lw
			e.logs = append(e.logs, lw)
		}
		s := &Server{opts: o, java: java, classpath: classpath, port: members[i].ClientPort}
		e.members = append(e.members, s)
		if err := s.prepare(); err != nil {
			clash, err := e.abandon(fmt.Errorf("ensemble member %d: %w", i+1, err), mayRetry)
			return nil, clash, err
		}
	}

	// The first member to fail dooms the attempt: cancel the others'
	// waits rather than let them run into the timeout.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	for _, s := range e.members {
		wg.Go(func() {
			if err := s.run(ctx); err != nil {
				mu.Lock()
				defer mu.Unlock()
				if first == nil {
					first = err
					cancel()
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		clash, err := e.abandon(first, mayRetry)
		return nil, clash, err
	}
	return e, false, nil
}

// abandon kills and releases the members of a failed start, reports
// whether any of them found a port taken (noting the retry in their logs
// if mayRetry), and returns err with any problems of the cleanup.
func (e *Ensemble) abandon(err error, mayRetry bool) (clash bool, _ error) {
	errs := []error{err}
	for _, s := range e.members {
		p := s.current()
		if p == nil {
			continue
		}
		if kerr := p.Kill(); kerr != nil {
			errs = append(errs, fmt.Errorf("ensemble member %d: %w", s.MyID(), kerr))
		}
		if strings.Contains(strings.ToLower(p.Tail()), "address already in use") {
			clash = true
		}
	}
	for _, s := range e.members {
		if clash && mayRetry && s.log != nil {
			fmt.Fprintf(s.log, "==== an ensemble port was taken; retrying the ensemble on other ports\n")
		}
		if rerr := s.release(); rerr != nil {
			errs = append(errs, fmt.Errorf("ensemble member %d: %w", s.MyID(), rerr))
		}
	}
	for _, lw := range e.logs {
		lw.flush()
	}
	return clash, errors.Join(errs...)
}

// Members returns the ensemble's members in the order of their ids: the
// member with id i is Members()[i-1].
func (e *Ensemble) Members() []*Server { return slices.Clone(e.members) }

// Servers returns the client addresses of all members, running or not,
// for a ZooKeeper client.
func (e *Ensemble) Servers() []string {
	addrs := make([]string, len(e.members))
	for i, s := range e.members {
		addrs[i] = s.Addr()
	}
	return addrs
}

// ConnectString returns the client addresses of all members separated by
// commas, "127.0.0.1:port1,127.0.0.1:port2,...", as ZooKeeper connect
// strings and zk:// URLs list them.
func (e *Ensemble) ConnectString() string { return strings.Join(e.Servers(), ",") }

// Restart restarts the given members (every member when none is given)
// concurrently, each as [Server.Restart] does, and waits until all of them
// serve requests. Use it to bring back members that need each other for a
// quorum: after two members of three are killed, neither serves again
// until both run, so restarting them one after the other with
// [Server.Restart] would wait in vain for the first.
//
// If a member fails to start, the restarts still waiting are cancelled;
// the members that did not start are left stopped and the error is that
// of the first to fail, quoting its output.
func (e *Ensemble) Restart(ctx context.Context, members ...*Server) error {
	if len(members) == 0 {
		members = e.members
	}
	for i, m := range members {
		switch {
		case !slices.Contains(e.members, m):
			return fmt.Errorf("restart ZooKeeper ensemble: server %d of %d is not a member of this ensemble", i+1, len(members))
		case slices.Index(members, m) != i:
			return fmt.Errorf("restart ZooKeeper ensemble: member %d is given twice", m.MyID())
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu      sync.Mutex
		first   error
		stopped []int
		wg      sync.WaitGroup
	)
	for _, m := range members {
		wg.Go(func() {
			if err := m.Restart(ctx); err != nil {
				mu.Lock()
				defer mu.Unlock()
				stopped = append(stopped, m.MyID())
				if first == nil {
					first = err
					cancel()
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		slices.Sort(stopped)
		return fmt.Errorf("restart ZooKeeper ensemble (members %v left stopped): %w", stopped, first)
	}
	return nil
}

// Close kills every member with SIGKILL (ZooKeeper loses nothing it has
// acknowledged) and then closes each as [Server.Close] does: it closes the
// log files and removes the directories StartEnsemble created, keeping
// those under [Options.Dir]. Later calls do nothing and return the same
// error.
func (e *Ensemble) Close() error {
	e.closeOnce.Do(func() {
		var errs []error
		for _, s := range e.members {
			if err := s.Kill(); err != nil {
				errs = append(errs, fmt.Errorf("member %d: %w", s.MyID(), err))
			}
		}
		for _, s := range e.members {
			if err := s.Close(); err != nil {
				errs = append(errs, fmt.Errorf("member %d: %w", s.MyID(), err))
			}
		}
		for _, lw := range e.logs {
			lw.flush()
		}
		if err := errors.Join(errs...); err != nil {
			e.closeErr = fmt.Errorf("close ZooKeeper ensemble: %w", err)
		}
	})
	return e.closeErr
}

// syncWriter passes writes to w one at a time.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// lineWriter prefixes every line of one member's output and passes whole
// lines to the writer shared by all members, so that their lines do not
// interleave.
type lineWriter struct {
	prefix string
	out    *syncWriter
	buf    []byte // the start of an unfinished line; guarded by out.mu
}

// Write implements io.Writer.
func (l *lineWriter) Write(p []byte) (int, error) {
	l.out.mu.Lock()
	defer l.out.mu.Unlock()
	l.buf = append(l.buf, p...)
	end := bytes.LastIndexByte(l.buf, '\n') + 1
	if end == 0 {
		if len(l.buf) < maxLogLine {
			return len(p), nil
		}
		l.buf, end = append(l.buf, '\n'), len(l.buf)+1
	}
	var b bytes.Buffer
	for line := range bytes.Lines(l.buf[:end]) {
		b.WriteString(l.prefix)
		b.Write(line)
	}
	l.buf = append(l.buf[:0], l.buf[end:]...)
	if _, err := l.out.w.Write(b.Bytes()); err != nil {
		return len(p), err
	}
	return len(p), nil
}

// flush passes on an unfinished last line.
func (l *lineWriter) flush() {
	l.out.mu.Lock()
	defer l.out.mu.Unlock()
	if len(l.buf) > 0 {
		_, _ = l.out.w.Write([]byte(l.prefix + string(l.buf) + "\n"))
		l.buf = l.buf[:0]
	}
}
