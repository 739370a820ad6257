package persist

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// backend is what the etcd and ZooKeeper stores supply to the engine that
// both share: reading every value of a framework, and running one fenced
// transaction.
type backend interface {
	// path returns the full store path of a relative path, for messages.
	path(rel string) string
	// read returns everything under the framework's root (but leader/),
	// consistently for etcd (one revision).
	read(ctx context.Context) (*rawRead, error)
	// stable reports whether the manifest is unchanged since raw was read
	// (ZooKeeper re-reads it; etcd reads at one revision and is always
	// stable).
	stable(ctx context.Context, raw *rawRead) (bool, error)
	// prepare runs before the first write of a commit: ZooKeeper verifies
	// the fence's czxid and creates missing directory znodes.
	prepare(ctx context.Context, fence Fence) error
	// exec runs g as one fenced transaction, guarded by v.manVer, and
	// updates v.manVer when g writes the manifest. It returns an error
	// wrapping ErrFenced when the fence failed, errStale when the manifest
	// changed under the writer; any other error leaves the outcome unknown.
	exec(ctx context.Context, fence Fence, g *group, v *view) error
	// cost estimates the request bytes p adds to a transaction.
	cost(p *pop) int
	// forget drops cached layout knowledge after a failure.
	forget()
}

// txnStats counts the transactions a store runs and what they carry: ops,
// and the bytes of their keys and values. Tests check with it that a
// commit's cost grows with its batch, not with the state.
type txnStats struct {
	txns, ops, bytes atomic.Int64
}

func (c *txnStats) add(ops, bytes int) {
	c.txns.Add(1)
	c.ops.Add(int64(ops))
	c.bytes.Add(int64(bytes))
}

// errStale means the manifest changed since this store last read it while
// the fence still held: another writer, or a view from before this term.
var errStale = errors.New("persist: store changed since it was last loaded by this replica; reload")

// limits bound one transaction.
type limits struct {
	maxOps      int  // ops per transaction, the manifest write included
	maxBytes    int  // estimated request bytes per transaction
	partSize    int  // data bytes per part and per journal chunk
	maxRecord   int  // largest record accepted
	maxKey      int  // longest task id or entry key accepted
	rangeDelete bool // the backend deletes a key prefix in one op (etcd)
}

// rawRead is what a backend read: values by relative path.
type rawRead struct {
	hasMan    bool
	manifest  []byte
	manVer    int64
	records   []rawRecord
	parts     []rawPart
	journal   []rawJournal
	foreign   []string // relative paths regent does not own
	stray     []string // ZooKeeper: format 2 directories beside a format 1 store
	fetch     func(ctx context.Context, rels []string) ([][]byte, error)
	zkManZxid int64 // ZooKeeper: the manifest's mzxid when read
}

type rawRecord struct {
	rel   string
	rec   recKey
	value []byte
}

type rawPart struct {
	rel string
	rec recKey
	id  partID
}

type rawJournal struct {
	rel string
	gen uint64
	n   uint32
}

// partID names one part of a large record.
type partID struct {
	gen uint64
	n   uint32
}

// recInfo is what a view keeps about one stored record.
type recInfo struct {
	hash  uint64
	gen   uint64 // generation of its parts; parts == 0 when inline
	parts uint32
}

// view is the physical state of the store as this replica last read or
// wrote it: which records, parts and journal chunks exist. Commits plan
// against it (ZooKeeper must create or set, and needs to know which).
type view struct {
	man     *manifest // nil: no manifest yet
	manVer  int64     // etcd: ModRevision (0 when absent); ZooKeeper: version (-1 when absent)
	format  int
	recs    map[recKey]recInfo
	parts   map[recKey][]partID
	journal map[string]struct{} // journal chunks present, relative paths
	orphans []string            // parts no record references
	pending []lop               // journaled ops of an interrupted commit
	// keepData (ZooKeeper): every record's stored form, and the format 2
	// directories of an interrupted migration, for the migration.
	data  map[recKey]recData
	stray []string
}

// recData is a record as stored: inline data, or a reference to parts.
type recData struct {
	data []byte
	ref  *partsRef
}

// pop is one physical write.
type pop struct {
	rel    string
	value  []byte // put
	del    bool
	prefix bool // delete every key under rel (etcd only)
	exists bool // put: the node exists (ZooKeeper sets it, else creates it)
}

// group is one fenced transaction.
type group struct {
	phase    string
	pops     []pop
	manifest []byte // the new manifest, or nil
	bytes    int
}

// Commit phases, as the test hook sees them.
const (
	phaseSingle  = "single"
	phaseCleanup = "cleanup"
	phaseStage   = "stage"
	phaseJournal = "journal"
	phaseMark    = "mark"
	phaseApply   = "apply"
	phaseClear   = "clear"
)

// engine is the backend-independent half of the etcd and ZooKeeper
// stores: decoding, planning, journaling.
type engine struct {
	framework string
	lay       layout
	lim       limits
	be        backend
	lg        *zap.Logger
	// format is the format the engine reads and writes (1); values of a
	// higher one are refused with ErrNewerFormat.
	format int
	// keepData makes load keep every record's data or parts reference in
	// the view (ZooKeeper: what a migration to format 2 rewrites).
	keepData bool

	mu     sync.Mutex
	v      *view // nil until loaded, and after a failure
	closed bool
	// hook, if set, runs before every transaction (phase "before <phase>")
	// and after every successful one (tests).
	hook func(phase string, n int)
}

var errClosed = errors.New("persist: store closed")

// load reads a consistent snapshot and makes it the current view.
func (e *engine) load(ctx context.Context) (*Snapshot, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, errClosed
	}
	snap, v, err := e.readView(ctx)
	if err != nil {
		e.v = nil
		return nil, err
	}
	e.v = v
	return snap, nil
}

// loadAttempts bounds how often Load reads again when a concurrent commit
// changed the store under it (ZooKeeper; a leader never loads while it
// commits, so this only slows down standbys that read a busy store).
const loadAttempts = 30

func (e *engine) readView(ctx context.Context) (*Snapshot, *view, error) {
	var snap *Snapshot
	var v *view
	err := readConsistent(ctx, e.lg, func() (*rawRead, error) {
		raw, err := e.be.read(ctx)
		if err != nil {
			return nil, err
		}
		snap, v, err = e.build(ctx, raw)
		return raw, err
	}, e.be.stable)
	if err != nil {
		return nil, nil, err
	}
	return snap, v, nil
}

// readConsistent calls read until one ran while the store did not change
// (stable), and returns its error. read returns what it read, or nil if it
// failed before it read the manifest; a node that vanished while it read
// is worth another attempt.
func readConsistent(ctx context.Context, lg *zap.Logger, read func() (*rawRead, error), stable func(context.Context, *rawRead) (bool, error)) error {
	var lastErr error
	for attempt := 0; attempt < loadAttempts; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(min(5*time.Millisecond<<attempt, 200*time.Millisecond))
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		raw, err := read()
		if raw == nil {
			if errors.Is(err, errVanished) {
				lastErr = err
				continue
			}
			return err
		}
		ok, serr := stable(ctx, raw)
		if serr != nil {
			return serr
		}
		if ok && (err == nil || !errors.Is(err, errVanished)) {
			return err
		}
		lastErr = err
		lg.Debug("persist: store changed while loading; reading again", zap.Int("attempt", attempt+1))
	}
	if lastErr == nil {
		lastErr = errors.New("store kept changing")
	}
	return fmt.Errorf("persist: load: no consistent read after %d attempts: %w", loadAttempts, lastErr)
}

func (e *engine) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	e.v = nil
}
