package drill

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/regent-sched/regent/integration/mesossim"
	"github.com/regent-sched/regent/integration/simtest"
)

// TestStepDownWithWorkInFlight: the leader is asked to step down while
// new agents join (offers, launches and their commits on the way) and an
// operator's blacklist write is in flight. The hand-over loses none of
// it: the write is applied once, every agent but the blacklisted one gets
// exactly one task, and no task id is launched twice.
func TestStepDownWithWorkInFlight(t *testing.T) {
	stores(t, func(t *testing.T, store string) {
		tp := Start(t, Options{Store: store})
		leader, fwid := firstLeader(t, tp)
		for i := 0; i < 3; i++ {
			if _, err := tp.Sim.AddAgent(mesossim.AgentSpec{}); err != nil {
				t.Fatal(err)
			}
		}
		agent := tp.Sim.AgentIDs()[0]
		wrote := make(chan error, 1)
		go func() {
			for attempt := 0; attempt < 200; attempt++ { // bounded: retried until applied
				code, body, err := leader.Do(context.Background(), "POST", "/v1/blacklist/"+agent)
				if err == nil && code == 200 {
					wrote <- nil
					return
				}
				if err == nil && code != 502 && code != 503 {
					wrote <- &unexpected{code, body}
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
			wrote <- &unexpected{0, "no success in 200 attempts"}
		}()
		t0 := time.Now()
		if code, body, err := leader.Do(context.Background(), "POST", "/v1/leader/step-down"); err != nil || code != 202 {
			t.Fatalf("step-down: %d %s %v", code, body, err)
		}
		tp.WaitTakeover(t0, 30*time.Second)
		next := tp.WaitLeader(30*time.Second, leader)
		if err := <-wrote; err != nil {
			t.Fatalf("blacklist during the step-down: %v", err)
		}
		simtest.Eventually(t, time.Minute, "5 running tasks (6 agents, one blacklisted)", simtest.Running(tp.Sim, 5))
		for _, tk := range tp.Sim.Snapshot().Frameworks[0].Tasks {
			if tk.AgentID == agent && !terminal(tk.State) {
				t.Fatalf("a task runs on the blacklisted agent: %+v", tk)
			}
		}
		code, body, err := next.Do(context.Background(), "GET", "/v1/blacklist")
		var bl struct {
			Agents []struct {
				ID string `json:"id"`
			} `json:"agents"`
		}
		if err != nil || code != 200 || json.Unmarshal([]byte(body), &bl) != nil || len(bl.Agents) != 1 || bl.Agents[0].ID != agent {
			t.Fatalf("blacklist after the hand-over: %d %s %v", code, body, err)
		}
		tp.CheckTasks(fwid, 5, 6)
		tp.MustPass(context.Background())
	})
}

type unexpected struct {
	code int
	body string
}

func (u *unexpected) Error() string { return fmt.Sprintf("HTTP %d: %s", u.code, u.body) }

// TestMastersBehindZooKeeper: three mesos-sim masters publish the leading
// one in ZooKeeper and the replicas are given --master zk://..., as in a
// production Mesos cluster. A Mesos master failover is followed through
// ZooKeeper without moving regent's leadership; a regent failover finds
// the current master the same way; the framework keeps its id and tasks.
func TestMastersBehindZooKeeper(t *testing.T) {
	stores(t, func(t *testing.T, store string) {
		tp := Start(t, Options{Store: store, Masters: 3, ZKMasters: true})
		leader, fwid := firstLeader(t, tp)
		first := tp.Sim.LeaderURL()
		t0 := time.Now()
		tp.Sim.FailoverMaster(200 * time.Millisecond)
		var second string
		simtest.Eventually(t, 10*time.Second, "another master leads", func() bool {
			second = tp.Sim.LeaderURL()
			return second != "" && second != first
		})
		tp.WaitTakeover(t0, 30*time.Second)
		if l := tp.WaitLeader(30 * time.Second); l != leader {
			t.Fatalf("a Mesos master failover moved the leadership to %s", l.ID)
		}
		simtest.Eventually(t, 10*time.Second, leader.ID+" on the new master", func() bool {
			info, err := leader.Info(context.Background())
			return err == nil && "http://"+info.Master == second
		})

		t1 := time.Now()
		leader.Kill()
		tp.WaitTakeover(t1, 30*time.Second)
		next := tp.WaitLeader(30*time.Second, leader)
		info, err := next.Info(context.Background())
		if err != nil || info.Framework.ID != fwid || "http://"+info.Master != second {
			t.Fatalf("%s after the failover: %+v %v, want framework %s on %s", next.ID, info, err, fwid, second)
		}
		simtest.Eventually(t, 30*time.Second, "3 running tasks", simtest.Running(tp.Sim, 3))
		tp.CheckTasks(fwid, 3, 3)
		tp.MustPass(context.Background())
	})
}
