// Package replica is one regent replica: the example framework under ha.Run,
// with its REST API, status page, health checks and metrics on one HTTP
// listener.
//
// Every replica serves every endpoint. Election state (/v1/leader,
// /v1/replicas, /healthz, /readyz, /metrics) is answered locally; the
// framework's data and every write are answered by the ready leader: a
// standby forwards the request to the leader's advertised address (a
// reverse proxy, not a redirect, so that a client behind a Kubernetes
// Service or a load balancer never needs to reach a pod directly) and the
// response says who served it (X-Regent-Served-By).
package replica

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"

	"github.com/regent-sched/regent/cmd/regent/internal/config"
	"github.com/regent-sched/regent/cmd/regent/internal/fleet"
	"github.com/regent-sched/regent/core"
	"github.com/regent-sched/regent/ha"
	"github.com/regent-sched/regent/persist"
)

// Version is the build's version, set by main.
var Version = "dev"

// Replica is one running replica.
type Replica struct {
	cfg      *config.Config
	log      *zap.Logger
	fw       *fleet.Framework
	backend  *backend
	runner   *ha.Runner[fleet.State]
	detector *core.MasterDetector
	metrics  *metrics
	auth     *auth
	forward  *forwarder
	listener net.Listener
	self     ha.Candidate
	started  time.Time

	draining atomic.Bool
	storeOK  atomic.Int64 // unix nanos of the last answered probe
	probeErr atomic.Pointer[error]
	runErr   atomic.Pointer[error]

	bg              sync.WaitGroup // failover timers
	mu              sync.Mutex
	leaderlessSince time.Time
	history         []transition // recent transitions, newest last
}

type transition struct {
	At     time.Time `json:"at"`
	Status string    `json:"status"`
	Leader string    `json:"leader"`
	Reason string    `json:"reason,omitempty"`
}

// Options change what Open builds, for tests and `regent dev`.
type Options struct {
	// Listener, when set, is used instead of listening on cfg.Listen.
	Listener net.Listener
	// SchedulerTuning adjusts the core configuration (shorter backoffs in
	// tests and dev); nil keeps the defaults.
	SchedulerTuning func(*core.Config[fleet.State])
	// WrapStore, when set, wraps the store (tests inject slowness).
	WrapStore func(persist.Store) persist.Store
}

// Open builds a replica from a validated configuration: it listens, and
// connects to the store and the Mesos master detector without waiting for
// either to answer.
func Open(cfg *config.Config, log *zap.Logger, opts Options) (_ *Replica, err error) {
	r := &Replica{cfg: cfg, log: log, started: time.Now()}
	var closers []func()
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		}
	}()

	r.fw, err = fleet.New(fleet.Config{
		Name: cfg.Name, CPUs: cfg.TaskCPUs, Mem: cfg.TaskMem, Command: cfg.TaskCommand, Role: cfg.Role,
		BackoffMin: cfg.RelaunchBackoffMin, BackoffMax: cfg.RelaunchBackoffMax,
	})
	if err != nil {
		return nil, err
	}
	if r.auth, err = newAuth(cfg); err != nil {
		return nil, err
	}
	r.listener = opts.Listener
	if r.listener == nil {
		if r.listener, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("--listen %s: %w", cfg.Listen, err)
		}
	}
	closers = append(closers, func() { r.listener.Close() })
	r.self = ha.Candidate{ID: cfg.ID, Address: advertise(cfg, r.listener.Addr())}
	if r.forward, err = newForwarder(cfg, r.auth); err != nil {
		return nil, err
	}

	r.detector, err = core.NewDetector(cfg.Master, log.Named("detector"), core.WithZKSessionTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("--master: %w", err)
	}
	closers = append(closers, func() { r.detector.Close() })
	r.backend, err = openBackend(cfg, r.self, log)
	if err != nil {
		return nil, err
	}
	closers = append(closers, r.backend.close)

	r.metrics = newMetrics(Version)
	fi := mesos.FrameworkInfo{
		User: cfg.User, Name: cfg.Name, Roles: []string{cfg.Role},
		Capabilities: []mesos.FrameworkInfo_Capability{{Type: mesos.FrameworkInfo_Capability_MULTI_ROLE}},
		Hostname:     hostOf(r.self.Address),
		WebUiURL:     &r.self.Address,
	}
	ft := cfg.FailoverTimeout.Seconds()
	fi.FailoverTimeout = &ft
	checkpoint := true
	fi.Checkpoint = &checkpoint
	if cfg.Principal != "" {
		fi.Principal = &cfg.Principal
	}
	sc := core.Config[fleet.State]{
		Framework:     r.fw,
		Detector:      r.detector,
		FrameworkInfo: fi,
		Logger:        log.Named("scheduler"),
	}
	if opts.SchedulerTuning != nil {
		opts.SchedulerTuning(&sc)
	}
	var store persist.Store = instrumentedStore{Store: r.backend.store, m: r.metrics}
	if opts.WrapStore != nil {
		store = opts.WrapStore(store)
	}
	r.runner, err = ha.New(ha.Config[fleet.State]{
		Elector:      r.backend.elector,
		Store:        store,
		Scheduler:    sc,
		OnTransition: r.onTransition,
		LoadTimeout:  r.cfg.LoadTimeout,
		Logger:       log.Named("ha"),
	})
	if err != nil {
		return nil, err
	}
	r.metrics.runner = r.runner.Status
	r.metrics.current = r.runner.Scheduler
	r.metrics.readyFor = r.readiness
	return r, nil
}

// advertise is the base URL the other replicas use for this one.
func advertise(cfg *config.Config, addr net.Addr) string {
	if cfg.AdvertiseURL != "" {
		return cfg.AdvertiseURL
	}
	scheme := "http"
	if cfg.TLS() {
		scheme = "https"
	}
	host, _, _ := net.SplitHostPort(cfg.Listen)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host, _ = os.Hostname()
	}
	port := "0"
	if ta, ok := addr.(*net.TCPAddr); ok {
		port = strconv.Itoa(ta.Port)
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// hostOf is the host of the advertised base URL, the framework's hostname
// in Mesos; nil when the URL has none.
func hostOf(base string) *string {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return nil
	}
	h := u.Hostname()
	return &h
}

// Address is the replica's advertised base URL.
func (r *Replica) Address() string { return r.self.Address }

// Runner is the replica's ha.Runner, for tests.
func (r *Replica) Runner() *ha.Runner[fleet.State] { return r.runner }

// Run serves HTTP and runs the election until ctx ends, then hands over:
// readiness fails at once, the scheduler stops and resigns so that another
// replica takes over without waiting for a TTL, and only then does the
// HTTP server finish its in-flight requests (meanwhile this replica goes
// on answering, forwarding to the new leader). It returns nil after a
// clean stop, or the error that ended it (ha.ErrFatal, a listener error).
func (r *Replica) Run(ctx context.Context) error {
	srv := &http.Server{
		Handler:           r.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          zap.NewStdLog(r.log.Named("http")),
	}
	ln := r.listener
	if r.cfg.TLS() {
		tc, err := r.auth.serverTLS(r.cfg)
		if err != nil {
			return err
		}
		ln = tls.NewListener(ln, tc)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	pctx, pcancel := context.WithCancel(context.Background())
	probeDone := make(chan struct{})
	go func() { defer close(probeDone); r.probeStore(pctx) }()

	rctx, rcancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- r.runner.Run(rctx) }()
	r.log.Info("replica started", zap.String("id", r.self.ID), zap.String("address", r.self.Address),
		zap.String("store", r.cfg.StoreKind()), zap.String("master", core.RedactMasterSpec(r.cfg.Master)))

	var err error
	select {
	case <-ctx.Done():
	case err = <-runDone:
		runDone <- err
		if err != nil {
			r.runErr.Store(&err)
			r.log.Error("the election loop ended: this replica will not lead again", zap.Error(err))
		}
	case err = <-serveErr:
		err = fmt.Errorf("http server: %w", err)
	}

	r.draining.Store(true)
	r.log.Info("stopping: handing over leadership")
	rcancel()
	select {
	case runErr := <-runDone:
		if err == nil {
			err = runErr
		}
	case <-time.After(r.cfg.ShutdownTimeout):
		r.log.Error("the scheduler did not stop in time", zap.Duration("shutdown_timeout", r.cfg.ShutdownTimeout))
	}
	sctx, scancel := context.WithTimeout(context.Background(), r.cfg.ShutdownTimeout)
	if serr := srv.Shutdown(sctx); serr != nil {
		r.log.Warn("http shutdown", zap.Error(serr))
		srv.Close()
	}
	scancel()
	pcancel()
	<-probeDone
	r.bg.Wait()
	r.Close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	r.log.Info("replica stopped", zap.Error(err))
	return err
}

// Close releases the store, the detector and the listener. Run calls it.
func (r *Replica) Close() {
	r.backend.close()
	r.detector.Close()
	r.listener.Close()
}

// probeStore checks the store every second for readiness.
func (r *Replica) probeStore(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := r.backend.probe(pctx); err == nil {
			r.storeOK.Store(time.Now().UnixNano())
			r.probeErr.Store(nil)
		} else {
			r.probeErr.Store(&err)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// readiness is nil when the replica can serve: it is not stopping, its
// election loop runs, and the store answered within the last 5 s. It does
// not depend on leadership: a standby answers every request (forwarding
// to the leader), so Services, rolling updates and PodDisruptionBudgets
// keep working.
func (r *Replica) readiness() error {
	switch {
	case r.draining.Load():
		return errors.New("shutting down")
	case r.runErr.Load() != nil:
		return fmt.Errorf("the election loop ended: %v", *r.runErr.Load())
	}
	last := r.storeOK.Load()
	why := ""
	if e := r.probeErr.Load(); e != nil {
		why = ": " + (*e).Error()
	}
	if last == 0 {
		return fmt.Errorf("the store has not answered yet%s", why)
	}
	if age := time.Since(time.Unix(0, last)); age > 5*time.Second {
		return fmt.Errorf("the store has not answered for %v%s", age.Truncate(time.Second), why)
	}
	return nil
}

// onTransition logs, keeps the recent history, and times failovers.
func (r *Replica) onTransition(st ha.Status) {
	r.mu.Lock()
	if st.Leader.ID == "" || (st.Leader.ID == r.self.ID && !st.Ready) {
		if r.leaderlessSince.IsZero() {
			r.leaderlessSince = time.Now()
		}
	} else if st.Leader.ID != r.self.ID {
		r.leaderlessSince = time.Time{}
	}
	role := "standby"
	switch {
	case st.Ready:
		role = "leader"
	case st.Stopping:
		role = "leader (handing over)"
	case st.Leading:
		role = "leader (loading)"
	}
	tr := transition{At: time.Now(), Status: role, Leader: st.Leader.ID, Reason: st.LastReason}
	changed := len(r.history) == 0 || r.history[len(r.history)-1].Status != tr.Status || r.history[len(r.history)-1].Leader != tr.Leader
	if changed {
		r.history = append(r.history, tr)
		if len(r.history) > 20 {
			r.history = r.history[len(r.history)-20:]
		}
	}
	since := r.leaderlessSince
	if st.Ready {
		r.leaderlessSince = time.Time{}
	}
	r.mu.Unlock()
	if changed {
		r.log.Info("election status", zap.String("status", role), zap.String("leader", st.Leader.ID),
			zap.Int64("term", st.Term), zap.String("reason", st.LastReason))
	}
	if st.Ready && !since.IsZero() {
		r.bg.Add(1)
		go func() { defer r.bg.Done(); r.timeFailover(since, st.Term) }()
	}
}

// timeFailover waits for the new term's scheduler to subscribe and records
// how long the framework went without a subscribed leader as seen here.
func (r *Replica) timeFailover(since time.Time, term int64) {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		st := r.runner.Status()
		if !st.Ready || st.Term != term {
			return
		}
		if s, err := r.runner.Scheduler(); err == nil && s.Status().Subscribed {
			r.metrics.failover.Observe(time.Since(since).Seconds())
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// transitions returns the recent history, newest first.
func (r *Replica) transitions() []transition {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]transition, len(r.history))
	for i, t := range r.history {
		out[len(out)-1-i] = t
	}
	return out
}
