package replica

import (
	"context"

	"github.com/regent-sched/regent/persist"
)

type persistStore = persist.Store

// slowLoad blocks Load until release is closed.
type slowLoad struct {
	persist.Store
	release chan struct{}
}

func (s *slowLoad) Load(ctx context.Context) (*persist.Snapshot, error) {
	select {
	case <-s.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.Store.Load(ctx)
}
