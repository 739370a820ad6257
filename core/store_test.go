package core

import (
	"testing"

	"github.com/regent-sched/regent/persist"
)

// newMemoryStore returns a memory store whose leader is the returned fence.
func newMemoryStore(t *testing.T) (*persist.MemoryStore, persist.Fence) {
	t.Helper()
	s, err := persist.NewMemory("core-test")
	if err != nil {
		t.Fatal(err)
	}
	f := persist.Fence{Key: "/regent/core-test/leader/1", Revision: 1}
	s.SetLeader(f)
	return s, f
}

func failCommits(t *testing.T, s *persist.MemoryStore, err error) {
	t.Helper()
	s.FailNextCommit(err)
}
