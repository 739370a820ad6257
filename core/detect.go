package core

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"

	"github.com/regent-sched/regent/internal/zkdial"
)

// ErrBadMasterSpec is wrapped by every error [NewDetector] returns for a
// master spec it cannot use; the message says what is wrong.
var ErrBadMasterSpec = errors.New("core: bad master spec")

const (
	// defaultZKSessionTimeout is Mesos' own detector session timeout.
	defaultZKSessionTimeout = 10 * time.Second
	detectRetryMin          = 100 * time.Millisecond
	detectRetryMax          = 5 * time.Second
	// masterNodeLabel prefixes the znode of each master contender; the rest
	// of the name is ZooKeeper's 10-digit sequence number.
	masterNodeLabel = "json.info_"
	masterSeqDigits = 10
)

// MasterDetector tells the scheduler which Mesos masters to try. It satisfies
// [MasterSource]. [NewDetector] builds one of two kinds:
//
//   - A static list ("http://m1:5050,https://m2:5050"): Candidates is the list
//     itself and never changes. The caller tries each URL in turn, following
//     307 redirects to the leader (a standby master answers 307 with the
//     leader's address), and starts over from the first after backing off
//     when all have failed.
//
//   - ZooKeeper ("zk://[user:password@]host:port[,host:port...]/path"): one
//     goroutine watches the children of path, the group where Mesos masters
//     register as "json.info_<10-digit sequence>" with a JSON MasterInfo
//     (other children, including the binary "info_" members of Mesos
//     before 0.24, are ignored). The member with the lowest sequence number
//     leads; Candidates is its base URL alone ("http://host:port": Mesos
//     publishes no scheme), or empty while no master leads, while path does
//     not exist, and before the first read.
//
// While ZooKeeper is unreachable the detector keeps reporting the last leader
// it read: the scheduler's own connection to that master is the better
// witness of its health, and the client's watches last as long as its
// session, so a reconnection within the session timeout delivers whatever
// changed meanwhile. The client learns that its session expired when it
// reaches a server again; the detector then reads the group afresh on the
// new session (the watches died with the old one) and reports what it
// finds. It never reports "no leader" just because it lost ZooKeeper.
type MasterDetector struct {
	log *zap.Logger

	mu      sync.Mutex
	urls    []string
	changed chan struct{} // closed and replaced when urls changes

	zk        *zkMasterWatch // nil for a static list
	closeOnce sync.Once
}

// DetectorOption changes how [NewDetector] sets up a detector.
type DetectorOption func(*detectorOptions)

type detectorOptions struct {
	sessionTimeout time.Duration
}

// WithZKSessionTimeout sets the ZooKeeper session timeout a detector asks
// for (the server may clamp it). The default is 10 s, as in Mesos.
func WithZKSessionTimeout(d time.Duration) DetectorOption {
	return func(o *detectorOptions) { o.sessionTimeout = d }
}

// NewDetector returns a detector for spec: a comma-separated list of
// http:// or https:// master base URLs ("scheme://host:port"), or one
// zk:// URL as Mesos takes it, "zk://[user:password@]host:port[,...]/path"
// (the password may not contain "/"; with credentials the client adds
// ZooKeeper digest authentication). A ZooKeeper detector connects in the
// background; NewDetector does not wait for it. Errors about spec wrap
// [ErrBadMasterSpec]. A nil logger logs nothing.
func NewDetector(spec string, logger *zap.Logger, opts ...DetectorOption) (*MasterDetector, error) {
	o := detectorOptions{sessionTimeout: defaultZKSessionTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if o.sessionTimeout <= 0 {
		return nil, fmt.Errorf("master detector: session timeout %v is not positive", o.sessionTimeout)
	}
	ms, err := parseMasterSpec(spec)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	d := &MasterDetector{
		log:     logger.Named("detector").With(zap.String("masters", ms.String())),
		changed: make(chan struct{}),
	}
	if ms.path == "" {
		d.urls = ms.static
		return d, nil
	}
	d.zk, err = startZKMasterWatch(ms, o.sessionTimeout, d.log, d.set)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Candidates returns the master base URLs to try now, best first. It is
// empty while a ZooKeeper detector knows of no leading master.
func (d *MasterDetector) Candidates() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.urls)
}

// Changed returns a channel that is closed at the next change of
// Candidates; call it again for the change after that. To miss no change,
// call Changed before Candidates. A static list never changes.
func (d *MasterDetector) Changed() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.changed
}

// Close stops a ZooKeeper detector and waits until its goroutines and those
// of its ZooKeeper client have ended; with a server that hangs (rather
// than one that is down) that can take about a session timeout. Candidates
// keeps its last answer and Changed is not signalled again. Close always
// returns nil; calling it again does nothing.
func (d *MasterDetector) Close() error {
	d.closeOnce.Do(func() {
		if d.zk != nil {
			d.zk.stop()
		}
	})
	return nil
}

// set records the current candidates and wakes whoever waits on Changed.
func (d *MasterDetector) set(urls []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if slices.Equal(d.urls, urls) {
		return
	}
	d.log.Info("leading Mesos master changed", zap.Strings("from", d.urls), zap.Strings("to", urls))
	d.urls = slices.Clone(urls)
	close(d.changed)
	d.changed = make(chan struct{})
}

// zkMasterWatch follows the Mesos master group in ZooKeeper. Its run loop is
// the only user of conn's requests and of authed.
type zkMasterWatch struct {
	conn   *zk.Conn
	events <-chan zk.Event
	path   string
	auth   []byte // "user:password" for digest authentication; nil for none
	authed bool
	log    *zap.Logger
	zlog   *ZKLogger
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns
}

func startZKMasterWatch(ms masterSpec, sessionTimeout time.Duration, log *zap.Logger, publish func([]string)) (*zkMasterWatch, error) {
	zlog := NewZKLogger(log)
	dial := ZKHandshakeDialer(sessionTimeout / time.Duration(len(ms.servers)))
	conn, events, err := zk.Connect(ms.servers, sessionTimeout,
		zk.WithDialer(dial), zk.WithLogger(zlog), zk.WithLogInfo(false))
	if err != nil {
		return nil, fmt.Errorf("master detector: connect to ZooKeeper %v: %w", ms.servers, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &zkMasterWatch{
		conn: conn, events: events, path: ms.path, log: log, zlog: zlog,
		cancel: cancel, done: make(chan struct{}),
	}
	if ms.auth != "" {
		w.auth = []byte(ms.auth)
	}
	go w.run(ctx, publish)
	return w, nil
}

// stop ends the run loop and the ZooKeeper client and waits for both.
func (w *zkMasterWatch) stop() {
	w.cancel()
	w.conn.Close() // also ends a request the run loop may be waiting on
	<-w.done
	for range w.events { // the client closes events when its goroutines end
	}
	w.zlog.Stop()
}

// run reads the group whenever its watch fires, and retries failed reads
// with backoff, or at once when a session (re)appears. Exactly one of
// "watch armed" and "retry timer pending" holds between iterations.
func (w *zkMasterWatch) run(ctx context.Context, publish func([]string)) {
	defer close(w.done)
	retry := time.NewTimer(0) // the first read, at once
	defer retry.Stop()
	backoff := detectRetryMin
	var watch <-chan zk.Event // nil while a retry is pending
	hasSession := false
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.events:
			if !ok {
				return
			}
			hasSession = w.sessionEvent(ev, hasSession)
			if ev.State == zk.StateHasSession && watch == nil {
				backoff = detectRetryMin
				retry.Reset(0)
			}
			continue
		case ev := <-watch:
			// A change, a deletion, or EventNotWatching when the session
			// expired or the client is closing: read again in every case.
			w.log.Debug("master group watch fired", zap.Stringer("event", ev.Type), zap.Error(ev.Err))
		case <-retry.C:
		}
		var err error
		watch, err = w.read(publish)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.log.Warn("read Mesos master group; will retry", zap.String("path", w.path),
				zap.Duration("after", backoff), zap.Error(err))
			retry.Reset(backoff)
			backoff = min(2*backoff, detectRetryMax)
			continue
		}
		backoff = detectRetryMin
	}
}

// sessionEvent logs a connection event and returns whether a session is up.
func (w *zkMasterWatch) sessionEvent(ev zk.Event, hadSession bool) bool {
	switch ev.State {
	case zk.StateHasSession:
		w.log.Info("ZooKeeper session established", zap.String("server", ev.Server),
			zap.String("session", strconv.FormatInt(w.conn.SessionID(), 16)))
		return true
	case zk.StateExpired:
		w.log.Warn("ZooKeeper session expired; reading the master group again on a new session")
		return false
	case zk.StateDisconnected:
		if hadSession {
			w.log.Warn("lost the ZooKeeper connection; keeping the last known leader unless the session expires",
				zap.String("server", ev.Server))
		}
		return false
	case zk.StateAuthFailed:
		w.log.Warn("ZooKeeper authentication failed", zap.String("server", ev.Server))
	default:
		w.log.Debug("ZooKeeper connection state", zap.Stringer("state", ev.State), zap.String("server", ev.Server))
	}
	return hadSession
}

// read publishes the current leader and returns the watch that fires at the
// next change of the group (or at its creation, while it does not exist).
func (w *zkMasterWatch) read(publish func([]string)) (<-chan zk.Event, error) {
	if !w.authed && w.auth != nil {
		if err := w.conn.AddAuth("digest", w.auth); err != nil {
			return nil, fmt.Errorf("add digest authentication: %w", err)
		}
		w.authed = true
	}
	for {
		children, _, watch, err := w.conn.ChildrenW(w.path)
		if errors.Is(err, zk.ErrNoNode) {
			exists, _, created, err := w.conn.ExistsW(w.path)
			if err != nil {
				return nil, fmt.Errorf("watch for %s: %w", w.path, err)
			}
			if exists {
				continue // created since ChildrenW
			}
			w.log.Debug("master group does not exist yet; watching for it", zap.String("path", w.path))
			publish(nil)
			return created, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", w.path, err)
		}
		leader, err := w.leader(children)
		if err != nil {
			return nil, err
		}
		publish(leader)
		return watch, nil
	}
}

// leader returns the URL of the lowest-numbered member whose MasterInfo it
// can read. Members that vanished since the listing are the past (the
// watch fires for them); unreadable ones are logged and skipped: the next
// member is a live master, and a standby redirects to the leader.
func (w *zkMasterWatch) leader(children []string) ([]string, error) {
	for _, name := range masterNodes(children) {
		node := w.path + "/" + name
		data, _, err := w.conn.Get(node)
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", node, err)
		}
		u, err := masterInfoURL(data)
		if err != nil {
			w.log.Warn("skipping unreadable master node", zap.String("node", node), zap.Error(err))
			continue
		}
		return []string{u}, nil
	}
	return nil, nil
}

// masterNodes returns the names of master group members, lowest sequence
// first: "json.info_" and ten digits. Other children, such as log_replicas
// or the binary "info_" members of Mesos before 0.24, are not members.
func masterNodes(children []string) []string {
	var out []string
	for _, c := range children {
		seq, ok := strings.CutPrefix(c, masterNodeLabel)
		if ok && len(seq) == masterSeqDigits && strings.Trim(seq, "0123456789") == "" {
			out = append(out, c)
		}
	}
	slices.Sort(out) // zero-padded: lexical order is numeric order
	return out
}

// masterInfoURL decodes a JSON MasterInfo and returns the master's base URL:
// host from address.hostname, address.ip, hostname or ip (in that order),
// port from address.port or port.
func masterInfoURL(data []byte) (string, error) {
	var mi mesos.MasterInfo
	if err := mi.UnmarshalJSON(data); err != nil {
		return "", fmt.Errorf("decode MasterInfo: %w", err)
	}
	host, port := "", 0
	if a := mi.GetAddress(); a != nil {
		host, port = a.GetHostname(), int(a.GetPort())
		if host == "" {
			host = a.GetIP()
		}
	}
	if host == "" {
		host = mi.GetHostname()
	}
	if ip := mi.GetIP(); host == "" && ip != 0 {
		// IPv4 bytes in network order, read as a little-endian integer.
		host = net.IPv4(byte(ip), byte(ip>>8), byte(ip>>16), byte(ip>>24)).String()
	}
	if host == "" {
		return "", errors.New("MasterInfo has no address, hostname or ip")
	}
	if port <= 0 || port > 65535 {
		port = int(mi.GetPort()) // 5050 when absent
	}
	if port <= 0 || port > 65535 {
		return "", fmt.Errorf("MasterInfo port %d is out of range", port)
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// ZKHandshakeDialer dials ZooKeeper connections whose first read deadline,
// the one on the server's answer to the connect request, is at most limit
// away. go-zookeeper allows ten receive timeouts there (over a minute with
// a 10 s session), and a server that is still starting can take the
// connection and never answer; the Java client gives up after the session
// timeout divided by the number of servers, and so does this. Pass it to
// zk.Connect with zk.WithDialer for every connection a replica makes; the
// master detector uses it for its own.
func ZKHandshakeDialer(limit time.Duration) zk.Dialer { return zkdial.Handshake(limit) }

// ZKLogger passes a go-zookeeper client's messages to zap at debug level
// until Stop; the client may log from its goroutines up to its end, after
// the test or program that owned the logger is gone. Give it to zk.Connect
// with zk.WithLogger.
type ZKLogger struct {
	mu      sync.Mutex
	log     *zap.Logger
	stopped bool
}

// NewZKLogger returns a ZKLogger writing to log.
func NewZKLogger(log *zap.Logger) *ZKLogger { return &ZKLogger{log: log} }

// Printf implements zk.Logger.
func (l *ZKLogger) Printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.log.Debug("zookeeper client", zap.String("message", fmt.Sprintf(format, args...)))
	}
}

// Stop drops every later message.
func (l *ZKLogger) Stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
}

// masterSpec is a parsed master spec: static URLs, or ZooKeeper servers and
// a group path.
type masterSpec struct {
	static  []string // http(s)://host:port, for a list
	servers []string // host:port, for ZooKeeper
	path    string   // the group znode; "" for a list
	auth    string   // "user:password", or ""
}

// String returns the spec with any password hidden.
func (s masterSpec) String() string {
	if s.path == "" {
		return strings.Join(s.static, ",")
	}
	creds := ""
	if user, _, ok := strings.Cut(s.auth, ":"); ok {
		creds = user + ":***@"
	}
	return "zk://" + creds + strings.Join(s.servers, ",") + s.path
}

func badSpec(spec, format string, args ...any) error {
	return fmt.Errorf("%w %q: %s", ErrBadMasterSpec, redactSpec(spec), fmt.Sprintf(format, args...))
}

// redactSpec hides the password of every scheme://user:password@ in s.
func redactSpec(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		scheme, rest, ok := strings.Cut(p, "://")
		if !ok {
			continue
		}
		authority, path, hasPath := strings.Cut(rest, "/")
		at := strings.LastIndex(authority, "@")
		if at < 0 {
			continue
		}
		user, _, hasPass := strings.Cut(authority[:at], ":")
		if !hasPass {
			continue
		}
		p = scheme + "://" + user + ":***" + authority[at:]
		if hasPath {
			p += "/" + path
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}

func parseMasterSpec(spec string) (masterSpec, error) {
	s := strings.TrimSpace(spec)
	if s == "" {
		return masterSpec{}, badSpec(spec, "empty")
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return masterSpec{}, badSpec(spec, "no scheme: want http://host:port, https://host:port or zk://host:port/path")
	}
	switch strings.ToLower(scheme) {
	case "zk":
		return parseZKSpec(spec, rest)
	case "http", "https":
	default:
		return masterSpec{}, badSpec(spec, "unknown scheme %q: want http, https or zk", scheme)
	}
	var ms masterSpec
	for _, entry := range strings.Split(s, ",") {
		u, err := parseMasterURL(strings.TrimSpace(entry))
		if err != nil {
			return masterSpec{}, badSpec(spec, "%v", err)
		}
		ms.static = append(ms.static, u)
	}
	return ms, nil
}

// parseMasterURL checks one entry of a static list and returns it as
// scheme://host:port.
func parseMasterURL(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty entry in the list")
	}
	scheme, _, ok := strings.Cut(s, "://")
	switch {
	case !ok:
		return "", fmt.Errorf("%q has no scheme: want http:// or https://", s)
	case strings.EqualFold(scheme, "zk"):
		return "", fmt.Errorf("%q: a zk:// URL must be the whole spec, not part of a list", redactSpec(s))
	}
	u, err := url.Parse(s)
	if err != nil {
		if inner := errors.Unwrap(err); inner != nil {
			err = inner // the *url.Error repeats s, password and all
		}
		return "", fmt.Errorf("%q: %w", redactSpec(s), err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%q: unknown scheme %q: want http or https", s, u.Scheme)
	case u.User != nil:
		return "", fmt.Errorf("%q: credentials do not belong in a master URL", redactSpec(s))
	case u.Hostname() == "":
		return "", fmt.Errorf("%q: no host", s)
	case u.Port() == "":
		return "", fmt.Errorf("%q: no port (Mesos masters listen on 5050 by default)", s)
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return "", fmt.Errorf("%q: want only scheme://host:port, without a path or query", s)
	}
	if err := checkPort(u.Port()); err != nil {
		return "", fmt.Errorf("%q: %w", s, err)
	}
	return u.Scheme + "://" + u.Host, nil
}

// parseZKSpec parses what follows "zk://" in spec.
func parseZKSpec(spec, rest string) (masterSpec, error) {
	var ms masterSpec
	authority, path, _ := strings.Cut(rest, "/")
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		creds := authority[:at]
		authority = authority[at+1:]
		if user, _, ok := strings.Cut(creds, ":"); !ok || user == "" {
			return masterSpec{}, badSpec(spec, "credentials must be user:password")
		}
		ms.auth = creds
	}
	if authority == "" {
		return masterSpec{}, badSpec(spec, "no ZooKeeper hosts")
	}
	for _, hp := range strings.Split(authority, ",") {
		host, port, err := net.SplitHostPort(hp)
		switch {
		case err != nil:
			return masterSpec{}, badSpec(spec, "bad host:port %q: %v", hp, err)
		case host == "" || strings.ContainsAny(host, " \t"):
			return masterSpec{}, badSpec(spec, "bad host:port %q: no host", hp)
		}
		if err := checkPort(port); err != nil {
			return masterSpec{}, badSpec(spec, "bad host:port %q: %v", hp, err)
		}
		ms.servers = append(ms.servers, net.JoinHostPort(host, port))
	}
	if path == "" {
		return masterSpec{}, badSpec(spec, "no path: want zk://host:port/path, as in zk://zk1:2181/mesos")
	}
	for _, seg := range strings.Split(path, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.ContainsRune(seg, 0) {
			return masterSpec{}, badSpec(spec, "bad ZooKeeper path %q", "/"+path)
		}
	}
	ms.path = "/" + path
	return ms, nil
}

func checkPort(p string) error {
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 || p[0] == '+' {
		return fmt.Errorf("port %q is not a number in 1..65535", p)
	}
	return nil
}

// ValidateMasterSpec checks spec as NewDetector would, without connecting
// anywhere: for validating configuration up front. Errors wrap
// ErrBadMasterSpec and never show a password.
func ValidateMasterSpec(spec string) error {
	_, err := parseMasterSpec(spec)
	return err
}

// RedactMasterSpec returns spec with the password of every
// scheme://user:password@ replaced by "***", fit for logs and status pages.
func RedactMasterSpec(spec string) string { return redactSpec(spec) }
