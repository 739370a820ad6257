package drill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-sched/regent/integration/mesossim"
	"github.com/regent-sched/regent/persist"
)

// The Mesos side of "a leader stops acting before another replica can be
// elected" (rule deposed-call). A stream belongs to the term that led when
// its SUBSCRIBE reached Mesos: the checker reads the election then (before
// Mesos handles the call) and notes its leader, the oldest election key.
// A watcher notes when each election key vanishes (resigned, or its lease
// or session expired): from then on another replica may lead, and Mesos
// accepts the deposed term's calls until the successor subscribes, so the
// leader must have stopped before. Any call on the stream, accepted or
// refused, that reaches Mesos after the watcher saw its term's key vanish
// breaks the rule, once past deposedCallSlack. The watcher sees a deletion
// a little after it happens and the call's arrival is taken when the
// master's handler starts, so a call flagged reached Mesos after the
// deletion, never before. The slack covers a call the leader wrote just
// before a graceful resign, which the master's HTTP server may read a
// moment after the resign on a loaded machine; a leader acting on after
// its term would go on far longer than that.
//
// A frozen process (SIGSTOP) is exempt: a call it had begun to send before
// the freeze goes out when it is thawed, and nothing but Mesos' own
// stream fencing can stop that (rule deposed-leader). So calls of a
// stream whose replica was frozen since the stream subscribed are not
// judged by this rule.

// deposedCallSlack is how long after its term's key vanished a call may
// still reach Mesos without breaking the rule (see above).
const deposedCallSlack = 100 * time.Millisecond

// leaderSeen is the election as it stood when a call reached Mesos.
type leaderSeen struct {
	key string // the leader's election key or znode ("": none)
	id  string // the leader's candidate ID
	err error  // not read (a store outage, the check off): no judgement
}

// callSeen is what the checker saw when a call reached Mesos (the call's
// CallRecord.Before).
type callSeen struct {
	arrived time.Time  // when the call reached the master
	leader  leaderSeen // for a SUBSCRIBE: the election, read then
	ack     any        // for an ACKNOWLEDGE: an ackSeen
}

// electionReader reads who leads from the store, and follows when
// election keys vanish.
type electionReader struct {
	etcd *clientv3.Client
	zk   *zk.Conn

	mu   sync.Mutex
	gone map[string]time.Time // election key -> when the watcher saw it vanish
}

func (e *electionReader) read() leaderSeen {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	dir := persist.LeaderDir("", storeFramework)
	switch {
	case e.etcd != nil:
		resp, err := e.etcd.Get(ctx, dir+"/", clientv3.WithPrefix(),
			clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend), clientv3.WithLimit(1))
		if err != nil {
			return leaderSeen{err: err}
		}
		if len(resp.Kvs) == 0 {
			return leaderSeen{}
		}
		kv := resp.Kvs[0]
		return leaderSeen{key: string(kv.Key), id: candidateID(kv.Value)}
	case e.zk != nil:
		// A server of an ensemble may lag behind the leader: sync first.
		if _, err := e.zk.Sync(dir); err != nil {
			return leaderSeen{err: err}
		}
		names, _, err := e.zk.Children(dir)
		if err != nil {
			return leaderSeen{err: err}
		}
		type node struct {
			name string
			seq  string
		}
		var nodes []node
		for _, n := range names {
			if i := strings.LastIndexByte(n, '-'); strings.HasPrefix(n, "candidate-") && i >= 0 {
				nodes = append(nodes, node{n, n[i+1:]})
			}
		}
		if len(nodes) == 0 {
			return leaderSeen{}
		}
		sort.Slice(nodes, func(i, j int) bool { return nodes[i].seq < nodes[j].seq })
		p := dir + "/" + nodes[0].name
		data, _, err := e.zk.Get(p)
		if err != nil {
			return leaderSeen{err: fmt.Errorf("read %s: %w", p, err)}
		}
		return leaderSeen{key: p, id: candidateID(data)}
	}
	return leaderSeen{err: fmt.Errorf("no store to read the election from")}
}

func candidateID(v []byte) string {
	var c struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(v, &c)
	return c.ID
}

// noteGone records that the watcher saw key vanish (the first time only).
func (e *electionReader) noteGone(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.gone == nil {
		e.gone = map[string]time.Time{}
	}
	if _, ok := e.gone[key]; !ok {
		e.gone[key] = time.Now()
	}
}

// goneAt returns when the watcher saw key vanish.
func (e *electionReader) goneAt(key string) (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.gone[key]
	return t, ok
}

// follow watches the election keys until ctx ends, noting deletions.
func (e *electionReader) follow(ctx context.Context) {
	dir := persist.LeaderDir("", storeFramework)
	pause := func() {
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	switch {
	case e.etcd != nil:
		for ctx.Err() == nil {
			wch := e.etcd.Watch(clientv3.WithRequireLeader(ctx), dir+"/", clientv3.WithPrefix())
			for resp := range wch {
				for _, ev := range resp.Events {
					if ev.Type == clientv3.EventTypeDelete {
						e.noteGone(string(ev.Kv.Key))
					}
				}
			}
			pause() // the watch ended (an outage): watch again
		}
	case e.zk != nil:
		var had map[string]bool
		for ctx.Err() == nil {
			names, _, ev, err := e.zk.ChildrenW(dir)
			if err != nil {
				if errors.Is(err, zk.ErrNoNode) {
					if _, _, ev, err = e.zk.ExistsW(dir); err == nil {
						select {
						case <-ev:
						case <-ctx.Done():
						}
						continue
					}
				}
				pause()
				continue
			}
			now := map[string]bool{}
			for _, n := range names {
				now[dir+"/"+n] = true
			}
			for k := range had {
				if !now[k] {
					e.noteGone(k)
				}
			}
			had = now
			select {
			case <-ev:
			case <-ctx.Done():
			case <-time.After(2 * time.Second): // a watch lost with a session
			}
		}
	}
}

// beforeCall is mesos-sim's BeforeCall: when the call arrived, for a
// SUBSCRIBE the election, and for an ACKNOWLEDGE the store's view of its
// task.
func (tp *Topology) beforeCall(call *scheduler.Call) any {
	s := callSeen{arrived: time.Now()}
	if call.Type == scheduler.Call_SUBSCRIBE {
		s.leader = tp.election.read()
	}
	s.ack = tp.acks.before(call)
	return s
}

// ackOf returns the ack part of a call's Before.
func ackOf(before any) any {
	if s, ok := before.(callSeen); ok {
		return s.ack
	}
	return before
}

// pauses records when replicas were frozen (SIGSTOP).
type pauses struct {
	mu sync.Mutex
	at map[string][]time.Time // replica ID -> freeze times
}

func (p *pauses) note(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.at == nil {
		p.at = map[string][]time.Time{}
	}
	p.at[id] = append(p.at[id], time.Now())
}

// between reports whether replica id was frozen at some time in [from -
// 1s, to]: a freeze just before a stream's SUBSCRIBE reached Mesos counts
// too, since the replica may have sent it, and more, before it froze.
func (p *pauses) between(id string, from, to time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range p.at[id] {
		if !t.Before(from.Add(-time.Second)) && !t.After(to) {
			return true
		}
	}
	return false
}

// deposedCalls judges rule deposed-call over the call journal; goneAt
// tells when the watcher saw an election key vanish.
func (tp *Topology) deposedCalls(calls []mesossim.CallRecord, goneAt func(string) (time.Time, bool), add func(rule string, at time.Time, format string, args ...any)) {
	type owner struct {
		leaderSeen
		at time.Time
	}
	owners := map[string]owner{} // stream -> the term that subscribed it
	for _, c := range calls {
		seen, ok := c.Before.(callSeen)
		if !ok || c.StreamID == "" {
			continue
		}
		if c.Type == "SUBSCRIBE" {
			if c.Status < 300 && seen.leader.err == nil && seen.leader.key != "" {
				owners[c.StreamID] = owner{seen.leader, seen.arrived}
			}
			continue
		}
		own, ok := owners[c.StreamID]
		if !ok {
			continue
		}
		gone, ok := goneAt(own.key)
		if !ok || !seen.arrived.After(gone.Add(deposedCallSlack)) || tp.paused.between(own.id, own.at, seen.arrived) {
			continue
		}
		add("deposed-call", seen.arrived, "%s (HTTP %d) on stream %s of %s's term reached Mesos %v after its election key %s vanished",
			c.Type, c.Status, c.StreamID, own.id, seen.arrived.Sub(gone).Round(time.Millisecond), own.key)
	}
}
