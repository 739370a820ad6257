package mesossim

// A thin test driver over mesos-go v0.0.11's own HTTP scheduler client
// (httpcli + httpsched + calls): the simulator is tested against the client
// other frameworks use, not only against regent's.

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpsched"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

type mgo struct {
	t      testing.TB
	caller calls.Caller
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	fwID   string
	events chan *scheduler.Event
	ended  chan error // the stream's end (nil error never sent)
	wg     sync.WaitGroup
}

// newMGO builds a mesos-go client for the scheduler endpoint at base
// (http://host:port), in the JSON or protobuf codec.
func newMGO(t testing.TB, base string, json bool, opts ...httpsched.Option) *mgo {
	t.Helper()
	codec := codecs.ByMediaType[codecs.MediaTypeProtobuf]
	if json {
		codec = codecs.ByMediaType[codecs.MediaTypeJSON]
	}
	cli := httpcli.New(
		httpcli.Endpoint(base+"/api/v1/scheduler"),
		httpcli.Codec(codec),
		httpcli.Do(httpcli.With(httpcli.Timeout(5*time.Second))),
	)
	ctx, cancel := context.WithCancel(context.Background())
	m := &mgo{t: t, caller: httpsched.NewCaller(cli, append([]httpsched.Option{httpsched.AllowReconnection(true)}, opts...)...),
		ctx: ctx, cancel: cancel}
	t.Cleanup(m.close)
	return m
}

func (m *mgo) close() {
	m.cancel()
	m.wg.Wait()
}

func frameworkInfo(name string, caps ...mesos.FrameworkInfo_Capability_Type) mesos.FrameworkInfo {
	ft := 3600.0
	info := mesos.FrameworkInfo{User: "root", Name: name, FailoverTimeout: &ft}
	for _, c := range caps {
		info.Capabilities = append(info.Capabilities, mesos.FrameworkInfo_Capability{Type: c})
	}
	return info
}

// subscribe sends SUBSCRIBE and pumps the stream's events into m.events.
// It returns the SUBSCRIBED event, or fails the test.
func (m *mgo) subscribe(info mesos.FrameworkInfo) *scheduler.Event_Subscribed {
	m.t.Helper()
	ev, err := m.trySubscribe(info)
	if err != nil {
		m.t.Fatalf("subscribe: %v", err)
	}
	if ev.Type != scheduler.Event_SUBSCRIBED {
		m.t.Fatalf("subscribe: first event %v (%v), want SUBSCRIBED", ev.Type, ev.GetError().GetMessage())
	}
	return ev.Subscribed
}

// trySubscribe returns the first event of a new subscription.
func (m *mgo) trySubscribe(info mesos.FrameworkInfo) (*scheduler.Event, error) {
	call := calls.Subscribe(&info)
	if info.ID != nil {
		call = call.With(calls.SubscribeTo(info.ID.Value))
	}
	// The stream lives as long as the response: its context must outlive this call.
	resp, err := m.caller.Call(m.ctx, call)
	if err != nil {
		return nil, err
	}
	events := make(chan *scheduler.Event, 1024)
	ended := make(chan error, 1)
	m.mu.Lock()
	m.events, m.ended = events, ended
	m.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer resp.Close()
		stop := context.AfterFunc(m.ctx, func() { resp.Close() })
		defer stop()
		for {
			var ev scheduler.Event
			if err := resp.Decode(&ev); err != nil {
				ended <- err
				close(events)
				return
			}
			if ev.Type == scheduler.Event_SUBSCRIBED {
				m.mu.Lock()
				m.fwID = ev.Subscribed.FrameworkID.Value
				m.mu.Unlock()
			}
			select {
			case events <- &ev:
			case <-m.ctx.Done():
				return
			}
		}
	}()
	select {
	case ev, ok := <-events:
		if !ok {
			return nil, errors.New("stream ended before its first event")
		}
		return ev, nil
	case <-time.After(10 * time.Second):
		return nil, errors.New("no first event within 10s")
	}
}

func (m *mgo) frameworkID() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fwID
}

// call sends a non-SUBSCRIBE call stamped with the framework id.
func (m *mgo) call(c *scheduler.Call) error {
	c = c.With(calls.Framework(m.frameworkID()))
	ctx, cancel := context.WithTimeout(m.ctx, 10*time.Second)
	defer cancel()
	resp, err := m.caller.Call(ctx, c)
	if resp != nil {
		resp.Close()
	}
	return err
}

func (m *mgo) mustCall(c *scheduler.Call) {
	m.t.Helper()
	if err := m.call(c); err != nil {
		m.t.Fatalf("%v call: %v", c.Type, err)
	}
}

// next returns the next event matching keep, failing the test after d.
// Events that do not match are dropped.
func (m *mgo) next(d time.Duration, keep func(*scheduler.Event) bool) *scheduler.Event {
	m.t.Helper()
	ev, err := m.await(d, keep)
	if err != nil {
		m.t.Fatal(err)
	}
	return ev
}

func (m *mgo) await(d time.Duration, keep func(*scheduler.Event) bool) (*scheduler.Event, error) {
	m.mu.Lock()
	events := m.events
	m.mu.Unlock()
	deadline := time.After(d)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return nil, errors.New("stream ended while waiting for an event")
			}
			if keep(ev) {
				return ev, nil
			}
		case <-deadline:
			return nil, errors.New("no matching event within " + d.String())
		}
	}
}

// none asserts that no event matching keep arrives within d.
func (m *mgo) none(d time.Duration, keep func(*scheduler.Event) bool, what string) {
	m.t.Helper()
	if ev, err := m.await(d, keep); err == nil {
		m.t.Fatalf("unexpected %s: %v", what, ev)
	}
}

// streamEnd waits for the current stream to end and returns why.
func (m *mgo) streamEnd(d time.Duration) error {
	m.t.Helper()
	m.mu.Lock()
	events, ended := m.events, m.ended
	m.mu.Unlock()
	deadline := time.After(d)
	for {
		select {
		case _, ok := <-events:
			if !ok {
				return <-ended
			}
		case <-deadline:
			m.t.Fatalf("stream still open after %v", d)
		}
	}
}

func isType(t scheduler.Event_Type) func(*scheduler.Event) bool {
	return func(ev *scheduler.Event) bool { return ev.Type == t }
}

func updateFor(taskID string, states ...mesos.TaskState) func(*scheduler.Event) bool {
	return func(ev *scheduler.Event) bool {
		if ev.Type != scheduler.Event_UPDATE || ev.Update.Status.TaskID.Value != taskID {
			return false
		}
		if len(states) == 0 {
			return true
		}
		for _, s := range states {
			if ev.Update.Status.GetState() == s {
				return true
			}
		}
		return false
	}
}

// updates collects the next update for each of the named tasks, in
// whatever order they come.
func (m *mgo) updates(ids ...string) map[string]*mesos.TaskStatus {
	m.t.Helper()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	got := map[string]*mesos.TaskStatus{}
	for len(got) < len(want) {
		ev := m.next(wait, func(ev *scheduler.Event) bool {
			if ev.Type != scheduler.Event_UPDATE {
				return false
			}
			id := ev.Update.Status.TaskID.Value
			_, dup := got[id]
			return want[id] && !dup
		})
		got[ev.Update.Status.TaskID.Value] = &ev.Update.Status
	}
	return got
}

func (m *mgo) ack(st mesos.TaskStatus) {
	m.t.Helper()
	if len(st.UUID) == 0 {
		m.t.Fatalf("ack of an update without uuid: %v", st)
	}
	m.mustCall(calls.Acknowledge(st.AgentID.Value, st.TaskID.Value, st.UUID))
}

func scalar(name string, v float64) mesos.Resource {
	return mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v}}
}

func commandTask(id string, agent mesos.AgentID, cmd string, res ...mesos.Resource) mesos.TaskInfo {
	if len(res) == 0 {
		res = []mesos.Resource{scalar("cpus", 0.5), scalar("mem", 64)}
	}
	return mesos.TaskInfo{Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: agent,
		Command: &mesos.CommandInfo{Value: &cmd}, Resources: res}
}

// launch accepts offer o with tasks.
func (m *mgo) launch(o mesos.Offer, tasks ...mesos.TaskInfo) {
	m.t.Helper()
	m.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunch(tasks...)}.WithOffers(o.ID)))
}

// offer waits for the next OFFERS event and returns its first offer.
func (m *mgo) offer(d time.Duration) mesos.Offer {
	m.t.Helper()
	ev := m.next(d, isType(scheduler.Event_OFFERS))
	return ev.Offers.Offers[0]
}
