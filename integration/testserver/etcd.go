package testserver

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/regent-sched/regent/integration/tb"
)

// Default etcd settings. Heartbeats are short so that elections and
// failover finish quickly; they stay well above scheduling noise on a busy
// two-core machine running the race detector.
const (
	defaultEtcdTickMs       = 25
	defaultEtcdElectionMs   = 250
	defaultEtcdLogLevel     = "info"
	defaultEtcdStartTimeout = 30 * time.Second
	etcdStartAttempts       = 5
)

// EtcdOption changes how [StartEtcd], [StartEtcdTLS] or [StartEtcdCluster]
// configures etcd.
type EtcdOption func(*etcdConfig)

type etcdConfig struct {
	tickMs       uint
	electionMs   uint
	logLevel     string
	startTimeout time.Duration
	// pki, when set, makes the server serve clients over https only and
	// require client certificates signed by it ([StartEtcdTLS]).
	pki *PKI
}

func newEtcdConfig(opts []EtcdOption) etcdConfig {
	c := etcdConfig{
		tickMs:       defaultEtcdTickMs,
		electionMs:   defaultEtcdElectionMs,
		logLevel:     defaultEtcdLogLevel,
		startTimeout: defaultEtcdStartTimeout,
	}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithEtcdTiming sets the raft heartbeat interval and election timeout in
// milliseconds (etcd's --heartbeat-interval and --election-timeout). The
// defaults are 25 and 250 for [StartEtcd], 50 and 500 for
// [StartEtcdCluster].
func WithEtcdTiming(tickMs, electionMs uint) EtcdOption {
	return func(c *etcdConfig) {
		c.tickMs = tickMs
		c.electionMs = electionMs
	}
}

// WithEtcdLogLevel sets the etcd server log level: "debug", "info", "warn"
// or "error". The log is only shown when the test fails; the default is
// "info".
func WithEtcdLogLevel(level string) EtcdOption {
	return func(c *etcdConfig) { c.logLevel = level }
}

// WithEtcdStartTimeout bounds how long startup may take before the test
// fails. The default is 30 seconds.
func WithEtcdStartTimeout(d time.Duration) EtcdOption {
	return func(c *etcdConfig) { c.startTimeout = d }
}

// Etcd is a single-member etcd server running inside the test process.
type Etcd struct {
	server    *embed.Etcd
	clientURL string
	peerURL   string
	dataDir   string
	pki       *PKI   // nil unless started by StartEtcdTLS
	rootPass  string // set by EnableAuth
}

// StartEtcd starts a single-member etcd server inside the test process on
// free loopback ports, with its data directory under t.TempDir(), and
// waits until it serves requests. The server is closed by t.Cleanup. Its
// log is printed only if the test fails.
func StartEtcd(t tb.TB, opts ...EtcdOption) *Etcd {
	t.Helper()
	return startEtcd(t, newEtcdConfig(opts))
}

func startEtcd(t tb.TB, cfg etcdConfig) *Etcd {
	t.Helper()
	lg, err := newBufferLogger(t, "embedded etcd", cfg.logLevel)
	if err != nil {
		t.Fatalf("testserver: start embedded etcd: %v", err)
	}

	var lastErr error
	for attempt := 1; attempt <= etcdStartAttempts; attempt++ {
		e, err := startEmbeddedEtcd(t, cfg, lg)
		if err == nil {
			return e
		}
		lastErr = err
		if !isAddrInUse(err, "") {
			break
		}
		t.Logf("testserver: embedded etcd attempt %d: %v; retrying on other ports", attempt, err)
	}
	t.Fatalf("testserver: start embedded etcd: %v", lastErr)
	return nil
}

func startEmbeddedEtcd(t tb.TB, c etcdConfig, lg *zap.Logger) (*Etcd, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	scheme := "http"
	if c.pki != nil {
		scheme = "https"
	}
	clientURL := scheme + "://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	cu, err := url.Parse(clientURL)
	if err != nil {
		return nil, fmt.Errorf("parse client URL: %w", err)
	}
	pu, err := url.Parse(peerURL)
	if err != nil {
		return nil, fmt.Errorf("parse peer URL: %w", err)
	}

	cfg := embed.NewConfig()
	cfg.Name = "embedded"
	cfg.Dir = filepath.Join(t.TempDir(), "etcd")
	cfg.ListenClientUrls = []url.URL{*cu}
	cfg.AdvertiseClientUrls = []url.URL{*cu}
	cfg.ListenPeerUrls = []url.URL{*pu}
	cfg.AdvertisePeerUrls = []url.URL{*pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.InitialClusterToken = "testserver-" + strconv.Itoa(ports[1])
	cfg.TickMs = c.tickMs
	cfg.ElectionMs = c.electionMs
	// Page-cache writes survive a process crash; tests never need fsync.
	cfg.UnsafeNoFsync = true
	// bcrypt's lowest cost (4; etcd's default is 10) for the passwords of
	// EnableAuth: each login hashes once, which at cost 10 under the race
	// detector takes about a second.
	cfg.BcryptCost = 4
	cfg.LogLevel = c.logLevel
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(lg)
	if c.pki != nil {
		cfg.ClientTLSInfo.CertFile, cfg.ClientTLSInfo.KeyFile = c.pki.IssueServer(t, "etcd")
		cfg.ClientTLSInfo.TrustedCAFile = c.pki.CAFile()
		cfg.ClientTLSInfo.ClientCertAuth = true
	}

	srv, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("embed.StartEtcd on %s: %w", clientURL, err)
	}
	timer := time.NewTimer(c.startTimeout)
	defer timer.Stop()
	select {
	case <-srv.Server.ReadyNotify():
	case err := <-srv.Err():
		srv.Close()
		return nil, fmt.Errorf("embedded etcd on %s failed while starting: %w", clientURL, err)
	case <-timer.C:
		srv.Close()
		return nil, fmt.Errorf("embedded etcd on %s not ready after %v", clientURL, c.startTimeout)
	}
	t.Cleanup(srv.Close)
	return &Etcd{server: srv, clientURL: clientURL, peerURL: peerURL, dataDir: cfg.Dir, pki: c.pki}, nil
}

// Endpoints returns the client URLs, for clientv3.Config.Endpoints.
func (e *Etcd) Endpoints() []string { return []string{e.clientURL} }

// PeerURL returns the raft peer URL.
func (e *Etcd) PeerURL() string { return e.peerURL }

// DataDir returns the server's data directory.
func (e *Etcd) DataDir() string { return e.dataDir }

// Server returns the underlying embedded server, for tests that need to
// reach into it. Do not close it; t.Cleanup does.
func (e *Etcd) Server() *embed.Etcd { return e.server }

// Client returns a client connected to the server. It is closed by
// t.Cleanup, before the server is. On a server from [StartEtcdTLS] it
// presents a client certificate from the server's PKI; after
// [Etcd.EnableAuth] it logs in as etcd's root user.
func (e *Etcd) Client(t tb.TB) *clientv3.Client {
	t.Helper()
	var tc *tls.Config
	if e.pki != nil {
		tc = e.pki.ClientTLS(t, "testserver-client")
	}
	user := ""
	if e.rootPass != "" {
		user = etcdRootUser
	}
	return newEtcdClientConfig(t, clientv3.Config{Endpoints: e.Endpoints(), TLS: tc, Username: user, Password: e.rootPass})
}

// newEtcdClient returns a client for endpoints that logs into a buffer
// shown on failure and is closed by t.Cleanup.
func newEtcdClient(t tb.TB, endpoints []string) *clientv3.Client {
	t.Helper()
	return newEtcdClientConfig(t, clientv3.Config{Endpoints: endpoints})
}

// newEtcdClientConfig is newEtcdClient for a configuration that may carry
// TLS settings and credentials.
func newEtcdClientConfig(t tb.TB, cc clientv3.Config) *clientv3.Client {
	t.Helper()
	endpoints := cc.Endpoints
	lg, err := newBufferLogger(t, "etcd client", "warn")
	if err != nil {
		t.Fatalf("testserver: etcd client: %v", err)
	}
	cc.DialTimeout = 5 * time.Second
	cc.Logger = lg
	cli, err := clientv3.New(cc)
	if err != nil {
		t.Fatalf("testserver: connect etcd client to %v: %v", endpoints, err)
	}
	t.Cleanup(func() {
		if err := cli.Close(); err != nil {
			t.Logf("testserver: close etcd client: %v", err)
		}
	})
	return cli
}
