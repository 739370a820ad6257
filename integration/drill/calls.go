package drill

import (
	"context"
	"encoding/json"
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
// elected" (rule deposed-call): when a call reaches Mesos, the checker
// reads the election (before Mesos handles the call) and notes its
// leader, the oldest election key. A stream belongs to the term that led
// when its SUBSCRIBE arrived; any later call on that stream, accepted or
// refused, must arrive while that term's key is still the leader's. Once
// the key is gone (resigned, or its lease or session expired), another
// replica may already lead, and Mesos accepts the deposed term's calls
// until the successor subscribes: the leader must have stopped before.
//
// A frozen process (SIGSTOP) is exempt: a call it had begun to send before
// the freeze goes out when it is thawed, and nothing but Mesos' own
// stream fencing can stop that (rule deposed-leader). So calls of a
// stream whose replica was frozen since the stream subscribed are not
// judged by this rule.

// leaderSeen is the election as it stood when a call reached Mesos.
type leaderSeen struct {
	key string // the leader's election key or znode ("": none)
	id  string // the leader's candidate ID
	err error  // not read (a store outage, the check off): no judgement
}

// callSeen is what the checker read when a call reached Mesos (the call's
// CallRecord.Before).
type callSeen struct {
	leader leaderSeen
	ack    any // for an ACKNOWLEDGE: an ackSeen
}

// electionReader reads who leads from the store.
type electionReader struct {
	etcd *clientv3.Client
	zk   *zk.Conn
}

func (e electionReader) read() leaderSeen {
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

// beforeCall is mesos-sim's BeforeCall: the election, and for an
// ACKNOWLEDGE the store's view of its task.
func (tp *Topology) beforeCall(call *scheduler.Call) any {
	return callSeen{leader: tp.election.read(), ack: tp.acks.before(call)}
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

// between reports whether replica id was frozen at some time in [from, to].
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

// deposedCalls judges rule deposed-call over the call journal.
func (tp *Topology) deposedCalls(calls []mesossim.CallRecord, add func(rule string, at time.Time, format string, args ...any)) {
	type owner struct {
		leaderSeen
		at time.Time
	}
	owners := map[string]owner{} // stream -> the term that subscribed it
	for _, c := range calls {
		seen, ok := c.Before.(callSeen)
		if !ok || seen.leader.err != nil || c.StreamID == "" {
			continue
		}
		if c.Type == "SUBSCRIBE" {
			if c.Status < 300 && seen.leader.key != "" {
				owners[c.StreamID] = owner{seen.leader, c.At}
			}
			continue
		}
		own, ok := owners[c.StreamID]
		if !ok || seen.leader.key == own.key || tp.paused.between(own.id, own.at, c.At) {
			continue
		}
		now := "no leader"
		if seen.leader.key != "" {
			now = fmt.Sprintf("%s (%s) led", seen.leader.key, seen.leader.id)
		}
		add("deposed-call", c.At, "%s (HTTP %d) on stream %s of %s's term (%s), whose election key was gone: %s",
			c.Type, c.Status, c.StreamID, own.id, own.key, now)
	}
}
