package core

import (
	"context"
	"errors"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// echoFW answers every StreamMessage[int] with its value doubled and counts
// plain messages in its state.
type echoFW struct{}

type echoState struct{ Seen int }

func (echoFW) Handle(s echoState, in Input) (echoState, []Action) {
	ev, ok := in.Event.(UserMessage)
	if !ok {
		return s, nil
	}
	s.Seen++
	if m, ok := ev.Payload.(StreamMessage[int]); ok && ev.Request {
		return s, []Action{Reply{To: ev.ID, Value: 2 * m.Value}}
	}
	if ev.Request {
		return s, []Action{Reply{To: ev.ID, Err: errors.New("unknown request")}}
	}
	return s, nil
}

func echoConfig(t *testing.T, queue int) Config[echoState] {
	store, fence := newMemoryStore(t)
	return Config[echoState]{Framework: echoFW{}, Store: store, Fence: fence, Masters: []string{"http://127.0.0.1:1"},
		FrameworkInfo: mesos.FrameworkInfo{User: "u", Name: "echo"}, QueueSize: queue,
		BackoffMin: time.Second, BackoffMax: time.Second}
}

func TestInboxBackPressure(t *testing.T) {
	// Not running: nothing drains the inbox of 2.
	s, err := New(echoConfig(t, 2))
	if err != nil {
		t.Fatal(err)
	}
	st := NewStream[int](s, "numbers")
	if err := st.TrySend(1); err != nil {
		t.Fatal(err)
	}
	if err := st.TrySend(2); err != nil {
		t.Fatal(err)
	}
	if err := st.TrySend(3); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third TrySend: %v, want ErrQueueFull", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := st.Send(ctx, 3); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send on a full inbox: %v, want to block until the deadline", err)
	}
}

func TestAskAndStreams(t *testing.T) {
	cfg := echoConfig(t, 16)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, nil) }()
	st := NewStream[int](s, "numbers")
	for i := 1; i <= 20; i++ {
		got, err := st.Ask(context.Background(), i)
		if err != nil || got != 2*i {
			t.Fatalf("Ask(%d) = %v, %v", i, got, err)
		}
	}
	if err := s.Send(context.Background(), "fire and forget"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ask(context.Background(), struct{}{}); err == nil || err.Error() != "unknown request" {
		t.Fatalf("error reply: %v", err)
	}
	// The answers came after their commits: the state holds every message.
	snap, err := cfg.Store.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if string(snap.Entries[stateEntry]) != `{"Seen":22}` {
		t.Fatalf("committed state %s", snap.Entries[stateEntry])
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := st.Ask(context.Background(), 1); !errors.Is(err, ErrStopped) {
		t.Fatalf("Ask after stop: %v", err)
	}
}
