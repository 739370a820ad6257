package core

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/apierrors"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"go.uber.org/zap"
)

// Errors that end the scheduler: re-subscribing cannot help.
var (
	// ErrFailedOver: another scheduler subscribed with this FrameworkID
	// ("Framework failed over"). Only the elected leader may subscribe, so
	// this means a replica outside the election, or a fencing failure.
	ErrFailedOver = errors.New("core: framework failed over to another scheduler")
	// ErrFrameworkRemoved: the master removed the framework (failover
	// timeout expired, or it was torn down); its id can never subscribe
	// again. regent never mints a new FrameworkID by itself: an operator
	// must decide.
	ErrFrameworkRemoved = errors.New("core: framework removed by the master")
	// ErrNotSubscribed: a call was made while no subscription is up.
	ErrNotSubscribed = errors.New("core: not subscribed")
	// ErrFrameworkIDChanged: the master subscribed the scheduler under
	// another FrameworkID than the one its state holds (a first
	// registration whose subscription dropped before its FrameworkID was
	// committed subscribes again as a new framework). The scheduler stops
	// rather than mix two frameworks; ha.Runner reloads the committed
	// state and subscribes again.
	ErrFrameworkIDChanged = errors.New("core: the master assigned another FrameworkID")
	// errUncommittedID refuses a call under a FrameworkID the store does
	// not hold yet: a crash would leave its effects under a framework no
	// replica knows.
	errUncommittedID = errors.New("core: the subscription's FrameworkID is not committed")
)

// connConfig configures the Mesos connection.
type connConfig struct {
	endpoints      func() []string            // candidate master base URLs, best first
	leaderChanged  <-chan struct{}            // a detector saw the leader change
	committedID    func() string              // the FrameworkID the store holds; nil: no check
	info           func() mesos.FrameworkInfo // with the committed FrameworkID, if any
	json           bool
	backoffMin     time.Duration
	backoffMax     time.Duration
	watchdogMisses int
	callTimeout    time.Duration
	maxRedirects   int
	do             httpcli.DoFunc
	log            *zap.Logger
	rand           func() float64
}

// subscription is one live SUBSCRIBE stream.
type subscription struct {
	base        string // http://host:port of the master it is subscribed to
	streamID    string
	frameworkID string
	cli         *httpcli.Client
	cancel      context.CancelFunc
}

// conn keeps the scheduler subscribed to the leading master.
type conn struct {
	cfg connConfig

	mu  sync.Mutex
	cur *subscription
}

// connEvent is an event from the master, or a note from the connection.
type connEvent struct {
	ev           *scheduler.Event
	disconnected error // set when a subscription ended
}

func newConn(cfg connConfig) *conn { return &conn{cfg: cfg} }

func (c *conn) current() *subscription {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

func (c *conn) setCurrent(s *subscription) {
	c.mu.Lock()
	c.cur = s
	c.mu.Unlock()
}

// dropIf ends subscription s (if it is still current) so that run
// re-subscribes.
func (c *conn) dropIf(s *subscription) {
	c.mu.Lock()
	if c.cur == s {
		c.cur = nil
	}
	c.mu.Unlock()
	s.cancel()
}

func (c *conn) codec() httpcli.Opt {
	if c.cfg.json {
		return httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeJSON])
	}
	return httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeProtobuf])
}

func (c *conn) client(base string) *httpcli.Client {
	return httpcli.New(httpcli.Endpoint(base+"/api/v1/scheduler"), c.codec(), httpcli.Do(c.cfg.do))
}

// run subscribes, delivers events to out, and re-subscribes with truncated
// exponential backoff and jitter after any end of a subscription, until ctx
// ends (nil) or the master says re-subscribing cannot help.
func (c *conn) run(ctx context.Context, out chan<- connEvent) error {
	backoff := c.cfg.backoffMin
	for {
		err := c.once(ctx, out)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrFailedOver) || errors.Is(err, ErrFrameworkRemoved) {
			return err
		}
		if errors.Is(err, errHadSubscription) {
			backoff = c.cfg.backoffMin
		}
		select {
		case out <- connEvent{disconnected: err}:
		case <-ctx.Done():
			return nil
		}
		wait := time.Duration(float64(backoff) * (0.8 + 0.4*c.cfg.rand()))
		c.cfg.log.Info("re-subscribing", zap.Error(err), zap.Duration("after", wait))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(backoff*2, c.cfg.backoffMax)
	}
}

// errHadSubscription marks the end of a subscription that had worked: the
// next attempt starts from the shortest backoff.
var errHadSubscription = errors.New("subscription ended")

// once makes one subscription and serves it until it ends.
func (c *conn) once(ctx context.Context, out chan<- connEvent) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	resp, base, err := c.subscribe(sctx)
	if err != nil {
		return err
	}
	defer resp.Close()
	streamID := resp.(*httpcli.Response).Header.Get("Mesos-Stream-Id")
	if streamID == "" {
		return fmt.Errorf("subscribe to %s: response without Mesos-Stream-Id", base)
	}
	// Close the body when the subscription is cancelled: Decode has no
	// context of its own.
	stop := context.AfterFunc(sctx, func() { resp.Close() })
	defer stop()

	// Until SUBSCRIBED arrives, a silent stream is dropped after CallTimeout;
	// then after WatchdogMisses heartbeat intervals without any event.
	watchdog := time.AfterFunc(c.cfg.callTimeout, cancel)
	defer watchdog.Stop()
	var first scheduler.Event
	if err := resp.Decode(&first); err != nil {
		return fmt.Errorf("subscribe to %s: first event: %w", base, err)
	}
	if first.Type == scheduler.Event_ERROR {
		return classifyError(first.GetError().GetMessage())
	}
	if first.Type != scheduler.Event_SUBSCRIBED || first.Subscribed == nil {
		return fmt.Errorf("subscribe to %s: first event %v, want SUBSCRIBED", base, first.Type)
	}
	sub := &subscription{base: base, streamID: streamID, frameworkID: first.Subscribed.FrameworkID.Value,
		cli: c.client(base), cancel: cancel}
	c.setCurrent(sub)
	defer c.dropIf(sub)
	c.cfg.log.Info("subscribed", zap.String("master", base), zap.String("framework_id", sub.frameworkID))
	select {
	case out <- connEvent{ev: &first}:
	case <-ctx.Done():
		return nil
	}

	hb := time.Duration(first.Subscribed.GetHeartbeatIntervalSeconds() * float64(time.Second))
	if hb <= 0 {
		hb = 15 * time.Second
	}
	silence := hb * time.Duration(c.cfg.watchdogMisses)
	watchdog.Reset(silence)

	for {
		var ev scheduler.Event
		if err := resp.Decode(&ev); err != nil {
			if sctx.Err() != nil && ctx.Err() == nil {
				return fmt.Errorf("%w: %s: dropped (watchdog or failed call)", errHadSubscription, base)
			}
			return fmt.Errorf("%w: %s: %v", errHadSubscription, base, err)
		}
		watchdog.Reset(silence)
		if ev.Type == scheduler.Event_ERROR {
			if err := classifyError(ev.GetError().GetMessage()); errors.Is(err, ErrFailedOver) || errors.Is(err, ErrFrameworkRemoved) {
				return err
			}
		}
		select {
		case out <- connEvent{ev: &ev}:
		case <-ctx.Done():
			return nil
		}
	}
}

func classifyError(msg string) error {
	switch {
	case strings.Contains(msg, "Framework failed over"):
		return fmt.Errorf("%w: %s", ErrFailedOver, msg)
	case strings.Contains(msg, "Framework has been removed"), strings.Contains(msg, "framework has been removed"):
		return fmt.Errorf("%w: %s", ErrFrameworkRemoved, msg)
	}
	return fmt.Errorf("master refused the subscription: %s", msg)
}

// subscribe sends SUBSCRIBE to the candidates in turn, following 307s to
// the leading master, and returns the open stream.
func (c *conn) subscribe(ctx context.Context) (mesos.Response, string, error) {
	info := c.cfg.info()
	call := &scheduler.Call{Type: scheduler.Call_SUBSCRIBE, Subscribe: &scheduler.Call_Subscribe{FrameworkInfo: &info}}
	if info.ID != nil && info.ID.Value != "" {
		call.FrameworkID = &mesos.FrameworkID{Value: info.ID.Value}
	}
	cands := c.cfg.endpoints()
	if len(cands) == 0 {
		return nil, "", errors.New("no Mesos master known")
	}
	var errs []error
	for _, base := range cands {
		for hop := 0; hop <= c.cfg.maxRedirects; hop++ {
			resp, err := c.client(base).Do(call, httpcli.Close(true), httpcli.Context(ctx))
			if err == nil {
				return resp, base, nil
			}
			next, redirected := redirectTarget(resp, err, base)
			if resp != nil {
				resp.Close()
			}
			if !redirected {
				errs = append(errs, fmt.Errorf("subscribe to %s: %w", base, err))
				break
			}
			c.cfg.log.Debug("following redirect", zap.String("from", base), zap.String("to", next))
			base = next
		}
	}
	return nil, "", errors.Join(errs...)
}

// redirectTarget reads a 307's Location (protocol-relative //host:port/...
// as Mesos sends it) and returns the new base URL, keeping the scheme.
func redirectTarget(resp mesos.Response, err error, base string) (string, bool) {
	if !apierrors.CodeNotLeader.Matches(err) || resp == nil {
		return "", false
	}
	hr, ok := resp.(*httpcli.Response)
	if !ok {
		return "", false
	}
	loc, perr := url.Parse(hr.Header.Get("Location"))
	cur, berr := url.Parse(base)
	if perr != nil || berr != nil || loc.Host == "" {
		return "", false
	}
	return cur.Scheme + "://" + loc.Host, true
}

// call sends a non-SUBSCRIBE call on the current subscription. A refusal
// that means the subscription is stale (400, 403, 307, a broken
// connection) drops it so that run re-subscribes, as mesos-go's own client
// does.
func (c *conn) call(ctx context.Context, call *scheduler.Call) error {
	sub := c.current()
	if sub == nil {
		return ErrNotSubscribed
	}
	if c.cfg.committedID != nil && c.cfg.committedID() != sub.frameworkID {
		return fmt.Errorf("%w (%s)", errUncommittedID, sub.frameworkID)
	}
	call.FrameworkID = &mesos.FrameworkID{Value: sub.frameworkID}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.callTimeout)
	defer cancel()
	resp, err := sub.cli.Do(call, httpcli.Header("Mesos-Stream-Id", sub.streamID), httpcli.Context(ctx))
	if resp != nil {
		resp.Close()
	}
	if err == nil {
		return nil
	}
	var apiErr *apierrors.Error
	if !errors.As(err, &apiErr) || apierrors.CodeMalformedRequest.Matches(apiErr) ||
		apierrors.CodeUnsubscribed.Matches(apiErr) || apierrors.CodeNotLeader.Matches(apiErr) {
		c.cfg.log.Warn("call failed: dropping the subscription", zap.Stringer("call", call.Type), zap.Error(err))
		c.dropIf(sub)
	}
	return fmt.Errorf("%v: %w", call.Type, err)
}

// newTransport returns the HTTP client for Mesos calls and a function that
// closes its idle connections (for the end of Run).
func newTransport(timeout time.Duration) (httpcli.DoFunc, func()) {
	var tr *http.Transport
	do := httpcli.With(httpcli.Timeout(timeout), httpcli.Transport(func(t *http.Transport) {
		t.MaxIdleConnsPerHost = ackParallelism * 2
		t.Proxy = nil // masters are addressed directly, never through a proxy
		tr = t
	}))
	return do, tr.CloseIdleConnections
}

func jitter() float64 { return rand.Float64() }
