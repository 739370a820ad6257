package core

import (
	"strconv"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"go.uber.org/zap"

	"github.com/regent-sched/regent/persist"
)

type counterFW struct{}

type counterState struct{ Updates int }

func (counterFW) Handle(s counterState, in Input) (counterState, []Action) {
	if _, ok := in.Event.(TaskUpdate); ok {
		s.Updates++
	}
	return s, nil
}

// BenchmarkLoopStatusUpdates measures the pure loop: one status update
// with a uuid per op, for one of 100,000 tracked tasks, through the
// machine (bookkeeping, Framework.Handle, ack effect), with a group commit
// batch taken every 1,000 events as the loop does under load. No I/O.
// Run: go test -run '^$' -bench LoopStatusUpdates -benchmem ./core/
func BenchmarkLoopStatusUpdates(b *testing.B) {
	const tasks, batch = 100000, 1000
	m := newMachine[counterState](counterFW{}, JSONCodec[counterState]{}, testOptions(), zap.NewNop())
	snap := &persist.Snapshot{FrameworkID: "fw", Tasks: map[string][]byte{}}
	for i := 0; i < tasks; i++ {
		id := "task-" + strconv.Itoa(i)
		snap.Tasks[id] = []byte(`{"id":"` + id + `","agent_id":"agent","state":1}`)
	}
	if err := m.restore(snap); err != nil {
		b.Fatal(err)
	}
	evs := make([]*scheduler.Event, tasks)
	for i := range evs {
		evs[i] = &scheduler.Event{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{Status: mesos.TaskStatus{
			TaskID: mesos.TaskID{Value: "task-" + strconv.Itoa(i)}, State: mesos.TASK_RUNNING.Enum(),
			AgentID: &mesos.AgentID{Value: "agent"}, UUID: []byte("0123456789abcdef")}}}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.mesosEvent(t0, evs[i%tasks])
		if i%batch == batch-1 {
			if _, _, err := m.takeBatch(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
