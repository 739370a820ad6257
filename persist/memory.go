package persist

import (
	"context"
	"fmt"
	"sync"
)

var _ Store = (*MemoryStore)(nil)

// MemoryStore is a Store held in memory, for unit tests of core. It
// enforces fencing like the real stores (only the fence set by SetLeader
// may commit) and can be told to fail commits. It is never a default for
// users: nothing survives the process.
type MemoryStore struct {
	framework string

	mu          sync.Mutex
	leader      Fence
	state       Snapshot
	failNext    error
	failApplied bool
	closed      bool
}

// NewMemory returns an empty memory store for framework.
func NewMemory(framework string) (*MemoryStore, error) {
	if err := validateFramework(framework); err != nil {
		return nil, err
	}
	return &MemoryStore{
		framework: framework,
		state:     Snapshot{Tasks: map[string][]byte{}, Entries: map[string][]byte{}},
	}, nil
}

// Framework returns the framework name the store was made for.
func (m *MemoryStore) Framework() string { return m.framework }

// SetLeader makes f the only fence that may commit, as if its holder had
// just won the election; every other fence gets ErrFenced from then on.
// SetLeader(Fence{}) means no leader: every commit is fenced.
func (m *MemoryStore) SetLeader(f Fence) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.leader = f
}

// FailNextCommit makes the next Commit return err and change nothing, as a
// store that refused or lost the write would.
func (m *MemoryStore) FailNextCommit(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failNext, m.failApplied = err, false
}

// FailNextCommitAfterApply makes the next Commit apply its batch and then
// return err: a commit whose outcome the caller cannot know (a timeout
// after the write), after which it must reload.
func (m *MemoryStore) FailNextCommitAfterApply(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failNext, m.failApplied = err, true
}

// Load returns a deep copy of the committed state.
func (m *MemoryStore) Load(ctx context.Context) (*Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errClosed
	}
	s := m.state
	s.Tasks = cloneMap(m.state.Tasks)
	s.Entries = cloneMap(m.state.Entries)
	return &s, nil
}

// Commit applies b if fence is the current leader's.
func (m *MemoryStore) Commit(ctx context.Context, fence Fence, b Batch) (uint64, error) {
	ops, err := batchOps(&b, maxKeyBytes, DefaultMaxRecordBytes)
	if err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, errClosed
	}
	if fence == (Fence{}) || fence != m.leader {
		return 0, fmt.Errorf("persist: memory commit: fence %s@%d is not the leader's: %w", fence.Key, fence.Revision, ErrFenced)
	}
	fail, applied := m.failNext, m.failApplied
	m.failNext = nil
	if fail != nil && !applied {
		return 0, fail
	}
	for _, o := range ops {
		dst := m.state.Tasks
		if o.rec.kind == kindEntry {
			dst = m.state.Entries
		}
		if o.del {
			delete(dst, o.rec.key)
		} else {
			dst[o.rec.key] = append([]byte{}, o.data...)
		}
	}
	if b.FrameworkID != nil {
		m.state.FrameworkID = *b.FrameworkID
	}
	m.state.Generation++
	m.state.Format, m.state.Writer = formatWriter, fence
	if fail != nil {
		return 0, fail
	}
	return m.state.Generation, nil
}

// Close makes later calls fail.
func (m *MemoryStore) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

func cloneMap(in map[string][]byte) map[string][]byte {
	out := make(map[string][]byte, len(in))
	for k, v := range in {
		out[k] = append([]byte{}, v...)
	}
	return out
}
