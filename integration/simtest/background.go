package simtest

import (
	"context"
	"time"

	"github.com/regent-sched/regent/integration/tb"
)

// Background runs a blocking call (a scheduler's or a runner's Run) in a
// goroutine, with a context that Stop cancels.
type Background struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Go starts f(ctx) in a goroutine.
func Go(f func(ctx context.Context) error) *Background {
	ctx, cancel := context.WithCancel(context.Background())
	b := &Background{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		b.err = f(ctx)
	}()
	return b
}

// Wait waits up to limit for f to return by itself and returns its error;
// it fails the test if f is still running then.
func (b *Background) Wait(t tb.TB, limit time.Duration) error {
	t.Helper()
	select {
	case <-b.done:
		return b.err
	case <-time.After(limit):
		t.Fatalf("still running after %v", limit)
		return nil
	}
}

// Stop cancels f's context and waits up to limit for it to return, like
// Wait. It may be called again (from a cleanup): f's error again.
func (b *Background) Stop(t tb.TB, limit time.Duration) error {
	t.Helper()
	b.cancel()
	return b.Wait(t, limit)
}
