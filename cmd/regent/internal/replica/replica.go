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
	// early are the requests that were in flight when the stop began
	// (the probes aside): the listener stays open until they are done.
	early struct {
		sync.Mutex
		stopping bool
		wg       sync.WaitGroup
	}
	storeOK  atomic.Int64 // unix nanos of the last answered probe
	probeErr atomic.Pointer[error]
	runErr   atomic.Pointer[error]

	// runStopped is set once the election loop has returned during a
	// stop; from then on afterRun, which a watch of the store keeps
	// current, says who leads (the runner no longer follows it), so that
	// the requests still served are forwarded to the new leader.
	runStopped atomic.Bool
	afterRun   atomic.Pointer[ha.LeaderInfo]

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
// replica takes over without waiting for a TTL; the listener stays open
// (answering /readyz with 503, forwarding the rest to the new leader)
// until the requests in flight when the stop began are done, and then the
// HTTP server closes, finishing the requests it still serves. The
// hand-over, and the rest, each get --shutdown-timeout. Run returns nil
// after a clean stop, or the error that ended it (ha.ErrFatal, a listener
// error).
func (r *Replica) Run(ctx context.Context) error {
	srv := &http.Server{
		Handler:           r.countEarly(r.Handler()),
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
	r.early.Lock()
	r.early.stopping = true
	r.early.Unlock()
	octx, ocancel := context.WithCancel(context.Background())
	observeDone := make(chan struct{})
	go func() {
		defer close(observeDone)
		for li := range r.backend.elector.Observe(octx) {
			r.afterRun.Store(&li)
		}
	}()
	r.log.Info("stopping: handing over leadership")
	rcancel()
	select {
	case runErr := <-runDone:
		r.runStopped.Store(true)
		if err == nil {
			err = runErr
		}
	case <-time.After(r.cfg.ShutdownTimeout):
		r.log.Error("the scheduler did not stop in time", zap.Duration("shutdown_timeout", r.cfg.ShutdownTimeout))
	}
	sctx, scancel := context.WithTimeout(context.Background(), r.cfg.ShutdownTimeout)
	r.waitEarly(sctx)
	if serr := srv.Shutdown(sctx); serr != nil {
		r.log.Warn("http shutdown", zap.Error(serr))
		srv.Close()
	}
	scancel()
	ocancel()
	<-observeDone
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

// status is the runner's status, but for the leader once the election
// loop has stopped: then the leader as the store last showed it.
func (r *Replica) status() ha.Status {
	st := r.runner.Status()
	if r.runStopped.Load() {
		if li := r.afterRun.Load(); li != nil {
			st.Leader = *li
		}
	}
	return st
}

// countEarly counts the requests that start before the stop does, but
// the probes (a kubelet's would keep the listener open for nothing).
func (r *Replica) countEarly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/readyz" || req.URL.Path == "/healthz" {
			h.ServeHTTP(w, req)
			return
		}
		r.early.Lock()
		counted := !r.early.stopping
		if counted {
			r.early.wg.Add(1)
		}
		r.early.Unlock()
		if counted {
			defer r.early.wg.Done()
		}
		h.ServeHTTP(w, req)
	})
}

// waitEarly waits until the requests in flight when the stop began are
// done, or ctx ends. Meanwhile the listener accepts: a client that has not
// noticed the failed readiness yet is served (forwarded to the new
// leader) rather than refused.
func (r *Replica) waitEarly(ctx context.Context) {
	done := make(chan struct{})
	go func() { r.early.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		r.log.Warn("requests still in flight at the shutdown timeout", zap.Duration("shutdown_timeout", r.cfg.ShutdownTimeout))
	}
}

// Close releases the store, the detector and the listener. Run calls it.
func (r *Replica) Close() {
	r.backend.close()
	r.detector.Close()
	r.listener.Close()
}

// probeStore checks the store for readiness every second, or four times
// within the bound readiness allows when that is shorter, so that a
// healthy store is never seen as stale.
func (r *Replica) probeStore(ctx context.Context) {
	every, timeout := probeTiming(r.cfg.StoreStaleAfter())
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, timeout)
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

// probeTiming is the store probe's period and timeout for a readiness
// bound: at most 1s and 2s, and at most a quarter and a half of the bound.
func probeTiming(bound time.Duration) (every, timeout time.Duration) {
	return min(time.Second, bound/4), min(2*time.Second, bound/2)
}

// readiness is nil when the replica can serve: it is not stopping, its
// election loop runs, and the store answered within the last
// cfg.StoreStaleAfter (the election TTL on etcd, half the session timeout
// on ZooKeeper: as long as the election takes to replace a leader cut off
// from the store). It does not depend on leadership: a standby answers
// every request (forwarding to the leader), so Services, rolling updates
// and PodDisruptionBudgets keep working.
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
	if age, bound := time.Since(time.Unix(0, last)), r.cfg.StoreStaleAfter(); age > bound {
		return fmt.Errorf("the store has not answered for %v, longer than %v (%s)%s",
			age.Truncate(100*time.Millisecond), bound, r.cfg.StoreStaleFlag(), why)
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
