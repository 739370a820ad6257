package drill

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/regent-sched/regent/integration/simtest"
)

// TestStoreGoneForEveryone: the store is unreachable from every replica
// for longer than the election timeout, then back: nobody leads meanwhile
// (no Mesos call is accepted from a replica that cannot prove its term),
// and a leader emerges afterwards without any restart.
func TestStoreGoneForEveryone(t *testing.T) {
	stores(t, func(t *testing.T, store string) {
		tp := Start(t, Options{Store: store})
		_, fwid := firstLeader(t, tp)
		for _, r := range tp.Replicas {
			r.Store.Cut()
		}
		time.Sleep(tp.timeout() + tp.timeout()/2)
		t0 := time.Now()
		for _, r := range tp.Replicas {
			r.Store.Heal()
		}
		tp.WaitTakeover(t0, time.Minute)
		recovered(t, tp, tp.WaitLeader(time.Minute), fwid, 3, 3)
	})
}

// TestSlowStoreAndMesos: 50 ms of latency on every path of the leader (to
// the store and to Mesos) slows it down but changes nothing else.
func TestSlowStoreAndMesos(t *testing.T) {
	stores(t, func(t *testing.T, store string) {
		tp := Start(t, Options{Store: store})
		leader, fwid := firstLeader(t, tp)
		t0 := time.Now()
		leader.Store.Delay(50 * time.Millisecond)
		leader.Mesos.Delay(50 * time.Millisecond)
		// Work through the slow paths: a blacklist round trip.
		agent := tp.Sim.AgentIDs()[0]
		for _, m := range []string{"POST", "DELETE"} {
			if code, body, err := leader.Do(context.Background(), m, "/v1/blacklist/"+agent); err != nil || code != 200 {
				t.Fatalf("%s blacklist through slow paths: %d %s %v", m, code, body, err)
			}
		}
		simtest.Eventually(t, 30*time.Second, "3 running tasks", simtest.Running(tp.Sim, 3))
		leader.Store.Delay(0)
		leader.Mesos.Delay(0)
		if l := tp.WaitLeader(10 * time.Second); l != leader || tp.Subscribes(t0) != 0 {
			t.Fatalf("latency moved the leadership to %s (%d subscriptions)", l.ID, tp.Subscribes(t0))
		}
		tp.CheckTasks(fwid, 3, 4)
		tp.MustPass(context.Background())
	})
}

// TestAgentLossAndMasterFailover: an agent is lost (its task goes with it)
// and the Mesos master fails over; the framework keeps one task per live
// agent throughout and after the agent comes back.
func TestAgentLossAndMasterFailover(t *testing.T) {
	stores(t, func(t *testing.T, store string) {
		tp := Start(t, Options{Store: store})
		_, fwid := firstLeader(t, tp)
		agent := tp.Sim.AgentIDs()[0]
		if err := tp.Sim.PartitionAgent(agent); err != nil {
			t.Fatal(err)
		}
		tp.Sim.FailoverMaster(200 * time.Millisecond)
		time.Sleep(time.Second)
		if err := tp.Sim.RestoreAgent(agent); err != nil {
			t.Fatal(err)
		}
		simtest.Eventually(t, time.Minute, "3 running tasks", simtest.Running(tp.Sim, 3))
		tp.MustPass(context.Background())
		tp.CheckTasks(fwid, 3, 4)
	})
}

// TestWritesDuringATakeover: an operator keeps blacklisting and
// unblacklisting through a standby while the leader is killed. Every
// request either succeeds or says to retry; retried until they succeed,
// the final state is exactly what the last successful request said.
func TestWritesDuringATakeover(t *testing.T) {
	stores(t, func(t *testing.T, store string) {
		tp := Start(t, Options{Store: store})
		leader, _ := firstLeader(t, tp)
		var standby *Replica
		for _, r := range tp.Replicas {
			if r != leader {
				standby = r
				break
			}
		}
		agent := tp.Sim.AgentIDs()[1]
		var (
			mu      sync.Mutex
			codes   = map[int]int{}
			last    string
			stop    = make(chan struct{})
			stopped = make(chan struct{})
		)
		go func() {
			defer close(stopped)
			for i := 0; i < 400; i++ { // bounded: at most 400 requests
				select {
				case <-stop:
					return
				default:
				}
				method := []string{"POST", "DELETE"}[i%2]
				for attempt := 0; attempt < 100; attempt++ { // retry until applied
					code, _, err := standby.Do(context.Background(), method, "/v1/blacklist/"+agent)
					mu.Lock()
					codes[code]++
					mu.Unlock()
					if err == nil && code == 200 {
						mu.Lock()
						last = method
						mu.Unlock()
						break
					}
					if err == nil && code != 502 && code != 503 {
						t.Errorf("%s during the takeover: %d", method, code)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
		time.Sleep(500 * time.Millisecond)
		t0 := time.Now()
		leader.Kill()
		tp.WaitTakeover(t0, 30*time.Second)
		tp.WaitLeader(30*time.Second, leader)
		time.Sleep(500 * time.Millisecond)
		close(stop)
		<-stopped
		mu.Lock()
		defer mu.Unlock()
		code, body, err := standby.Do(context.Background(), "GET", "/v1/blacklist")
		var bl struct {
			Agents []struct {
				ID string `json:"id"`
			} `json:"agents"`
		}
		if err != nil || code != 200 || json.Unmarshal([]byte(body), &bl) != nil {
			t.Fatalf("blacklist: %d %s %v", code, body, err)
		}
		listed := len(bl.Agents) == 1 && bl.Agents[0].ID == agent
		if (last == "POST") != listed {
			t.Fatalf("last applied request %s, but the agent is listed: %v (answers %v)", last, listed, codes)
		}
		t.Logf("answers during the takeover: %v", codes)
		tp.MustPass(context.Background())
	})
}
