package core_test

import (
	"context"
	"fmt"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/regent-sched/regent/core"
	"github.com/regent-sched/regent/integration/mesossim"
	"github.com/regent-sched/regent/persist"
)

// hello runs one `sleep` task and remembers that it did: the framework's
// whole logic is this pure function.
type hello struct{ Launched bool }

func helloFramework(s hello, in core.Input) (hello, []core.Action) {
	switch ev := in.Event.(type) {
	case core.OffersReceived:
		if s.Launched {
			return s, nil // unused offers are declined for us
		}
		o := ev.Offers[0]
		cmd := "sleep 3600"
		s.Launched = true
		return s, []core.Action{core.Launch{OfferIDs: []string{o.ID.Value}, Tasks: []mesos.TaskInfo{{
			Name: "hello", TaskID: mesos.TaskID{Value: "hello-1"}, AgentID: o.AgentID,
			Command:   &mesos.CommandInfo{Value: &cmd},
			Resources: []mesos.Resource{core.Scalar("cpus", 0.1), core.Scalar("mem", 32)},
		}}}}
	case core.UserMessage:
		t, _ := in.Tasks.Get("hello-1")
		return s, []core.Action{core.Reply{To: ev.ID, Value: t.State.String()}}
	}
	return s, nil
}

func Example() {
	// A simulated Mesos master with one agent (use your masters' URLs).
	sim, _ := mesossim.New(mesossim.Config{AllocationInterval: 50 * time.Millisecond})
	defer sim.Close()
	sim.AddAgent(mesossim.AgentSpec{})

	// The store: etcd or ZooKeeper in production (see persist); ha.Run
	// hands the scheduler its fence. Here, memory.
	store, _ := persist.NewMemory("hello")
	fence := persist.Fence{Key: "leader", Revision: 1}
	store.SetLeader(fence)

	s, err := core.New(core.Config[hello]{
		Framework:     core.FrameworkFunc[hello](helloFramework),
		Store:         store,
		Fence:         fence,
		Masters:       []string{sim.URL()},
		FrameworkInfo: mesos.FrameworkInfo{User: "root", Name: "hello"},
	})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx, nil)

	// Ask the loop; the answer is computed inside it, after the state is
	// committed.
	for {
		state, _ := s.Ask(ctx, "state of hello-1")
		if state == "TASK_RUNNING" {
			fmt.Println("hello-1 is", state)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Output: hello-1 is TASK_RUNNING
}
