package persist

import (
	"context"
	"errors"
)

// Errors callers branch on with errors.Is.
var (
	// ErrFenced means the commit's fence no longer holds: another replica
	// may lead. Nothing of the commit is visible. The caller must stop
	// acting as leader.
	ErrFenced = errors.New("persist: fenced: leadership lost")
	// ErrCorrupt means a stored record failed its checksum or could not be
	// decoded, or a record the manifest names is missing. The store is left
	// untouched; a replica must refuse to lead rather than overwrite it.
	ErrCorrupt = errors.New("persist: corrupt store")
	// ErrNewerFormat means the store was written by a newer version of
	// regent than this binary understands. The store is left untouched.
	ErrNewerFormat = errors.New("persist: store written by a newer format")
	// ErrForeign means the prefix holds data that is not a regent store of
	// this framework (another framework's name in the manifest, or keys that
	// are not regent's).
	ErrForeign = errors.New("persist: not this framework's store")
	// ErrTooLarge means a single record is larger than the store accepts
	// even in chunks (MaxRecordBytes, DefaultMaxRecordBytes), or a key is
	// longer than 1024 bytes.
	ErrTooLarge = errors.New("persist: record too large")
)

// Fence names one leadership term in the store's own terms; every commit
// is conditional on it. It comes from ha's elector.
//
//   - etcd: Key is the election key of the leader (its lease-specific key),
//     Revision its CreateRevision; a commit is a Txn that compares
//     CreateRevision(Key) == Revision.
//   - ZooKeeper: Key is the leader's ephemeral sequential znode; a commit
//     is a multi whose first op is Check(Key, 0). The path is unique
//     forever: ha names it candidate-<nonce>-<sequence>, with a random
//     128-bit nonce, so no other session, term or election (not even one
//     in a leader directory deleted and created again, whose sequence
//     starts over) creates it again. ha never modifies the znode after
//     creating it, so its data version stays 0 while it exists, and a
//     znode whose version is not 0 is not a fence (ErrFenced). Revision
//     is the node's czxid, verified (with the version) the first time a
//     store uses the fence; from then on the Check alone holds the fence.
//   - memory: Key and Revision are compared with the memory store's
//     current leader, set by MemoryStore.SetLeader.
type Fence struct {
	Key      string
	Revision int64
}

// Snapshot is everything one framework has persisted, as of its last
// successful commit.
type Snapshot struct {
	// FrameworkID is empty until the first SUBSCRIBED was committed.
	FrameworkID string
	// Tasks holds one opaque record per task id (core's encoding).
	Tasks map[string][]byte
	// Entries holds the framework's own state, one opaque record per key.
	Entries map[string][]byte
	// Generation counts successful commits; it only grows.
	Generation uint64
	// Format is the on-disk format version that was read.
	Format int
	// Writer is the fence of the term whose commit wrote the store last
	// (zero before the first commit, and in stores of format 1 or 2,
	// which did not record it). Drills check it against the election.
	Writer Fence
}

// Batch is one group commit: every change since the last commit. Applying
// it is atomic: after any crash a reader sees all of it or none of it.
// Deletes apply before puts, so a key both deleted and put ends up put;
// deleting a key that does not exist is not an error.
type Batch struct {
	// FrameworkID, when non-nil, replaces the stored FrameworkID.
	FrameworkID *string
	// PutTasks creates or replaces task records; DeleteTasks removes them.
	PutTasks    map[string][]byte
	DeleteTasks []string
	// PutEntries and DeleteEntries do the same for the framework's state.
	PutEntries    map[string][]byte
	DeleteEntries []string
}

// Empty reports whether the batch changes nothing.
func (b *Batch) Empty() bool {
	return b.FrameworkID == nil && len(b.PutTasks) == 0 && len(b.DeleteTasks) == 0 &&
		len(b.PutEntries) == 0 && len(b.DeleteEntries) == 0
}

// Store is the durable state of one framework in a coordination store.
// Implementations are safe for concurrent use, but only the leader commits.
type Store interface {
	// Load reads a consistent snapshot. A store never written returns an
	// empty snapshot (Generation 0). Errors wrap ErrCorrupt,
	// ErrNewerFormat or ErrForeign and name the key or znode at fault.
	Load(ctx context.Context) (*Snapshot, error)
	// Commit applies b atomically if fence still holds, and returns the new
	// generation. It fails with an error wrapping ErrFenced, and changes
	// nothing visible, once the fence is gone. A commit whose outcome is
	// unknown (a timeout) returns an error that does not wrap ErrFenced;
	// the caller must then reload before it trusts its view.
	Commit(ctx context.Context, fence Fence, b Batch) (uint64, error)
	// Close releases the store's resources (not the client it was given).
	Close() error
}
