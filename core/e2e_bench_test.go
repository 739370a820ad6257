package core

import (
	"context"
	"fmt"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"

	"github.com/regent-sched/regent/integration/mesossim"
)

// churnFW keeps launching short tasks (`true`: STARTING, RUNNING, FINISHED
// at once), ten per offer, so that status updates flow as fast as the
// scheduler can commit and acknowledge them.
type churnFW struct{}

type churnState struct{ Next int }

func (churnFW) Handle(s churnState, in Input) (churnState, []Action) {
	ev, ok := in.Event.(OffersReceived)
	if !ok {
		return s, nil
	}
	var acts []Action
	for _, o := range ev.Offers {
		l := Launch{OfferIDs: []string{o.ID.Value}, Filters: &mesos.Filters{RefuseSeconds: ptr(0.0)}}
		for k := 0; k < 10; k++ {
			id := fmt.Sprintf("c-%d", s.Next)
			s.Next++
			cmd := "true"
			l.Tasks = append(l.Tasks, mesos.TaskInfo{Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: o.AgentID,
				Command: &mesos.CommandInfo{Value: &cmd}, Resources: []mesos.Resource{Scalar("cpus", 0.01), Scalar("mem", 1)}})
		}
		acts = append(acts, l)
	}
	return s, acts
}

// BenchmarkEndToEndUpdates measures status updates per second through the
// whole scheduler (loop, group commit to the memory store, ACKNOWLEDGE over
// HTTP) against mesos-sim on loopback; b.N is the number of acknowledged
// updates. Run: go test -run '^$' -bench EndToEndUpdates -benchtime 30000x ./core/
func BenchmarkEndToEndUpdates(b *testing.B) {
	cfg := mesossim.FastConfig()
	cfg.StatusRetryMin, cfg.StatusRetryMax = time.Minute, time.Minute
	cfg.AllocationInterval = 20 * time.Millisecond
	sim, err := mesossim.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	for i := 0; i < 20; i++ {
		if _, err := sim.AddAgent(mesossim.AgentSpec{}); err != nil {
			b.Fatal(err)
		}
	}
	store, fence := newMemoryStore(&testing.T{})
	s, err := New(Config[churnState]{Framework: churnFW{}, Store: store, Fence: fence, Masters: []string{sim.URL()},
		FrameworkInfo: mesos.FrameworkInfo{User: "root", Name: "churn"}, Logger: zap.NewNop(),
		TickInterval: 100 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	go func() { done <- s.Run(ctx, nil) }()
	for s.Status().Counters.Acks < uint64(b.N) {
		select {
		case err := <-done:
			b.Fatalf("scheduler stopped: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	<-done
	st := s.Status()
	b.ReportMetric(float64(st.Counters.Acks)/elapsed.Seconds(), "acked_updates/s")
	b.ReportMetric(float64(st.Counters.Events)/float64(st.Commits), "events/commit")
}
