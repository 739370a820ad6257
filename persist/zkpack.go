package persist

import (
	"context"
	"fmt"
	"sync"

	"go.uber.org/zap"
)

// packer is ZooKeeper's format 2 store: records packed into the shards of
// a hash trie (shard.go), each commit's changes in a log entry, and a
// compaction that folds the log into the shards a little at every commit
// (zkcommit.go). A format 1 store is read by the record engine and
// migrated by the first commit (zkmigrate.go). See doc.go.
type packer struct {
	s         *ZKStore
	framework string
	lim       limits
	lg        *zap.Logger
	// shardMax is the size a shard is split above; records larger than
	// lim.partSize are stored in parts, as in format 1.
	shardMax int
	// format is the highest manifest format Load reads and the one
	// commits write: formatHashedParts, or formatPacked and formatWriter
	// in tests that play the binaries of formats 2 and 3 (which name parts
	// by their escaped key and take blobs/'s buckets for foreign keys).
	format int
	// Compaction pace (tests lower them): shard bytes rewritten per log
	// byte written, and the log entries and bytes beyond which shards are
	// rewritten whatever the credit.
	ratio      int
	maxEntries int
	maxSlack   int

	mu     sync.Mutex
	v      *pview // nil until loaded, and after a failure
	closed bool
	hook   func(phase string, n int)
}

// Compaction defaults: rewrite twice the bytes each commit logs, keep at
// most this many log entries, and at most the shards' size plus this many
// bytes in the log. Load reads the shards and the log: about 1.5 times
// the state.
const (
	compactRatio    = 2
	maxLogEntries   = 512
	maxLogSlack     = 4 << 20
	maxForcedSteps  = 8 // shard rewrites per commit beyond its credit
	maxLegacyMultis = 8 // multis per commit that delete a migrated store's format 1 znodes
)

func newPacker(s *ZKStore, c commonOptions, lim limits) *packer {
	return &packer{
		s: s, framework: c.framework, lim: lim, lg: c.lg, format: formatHashedParts,
		shardMax: lim.partSize, ratio: compactRatio, maxEntries: maxLogEntries, maxSlack: maxLogSlack,
	}
}

// pview is the store as this replica last read or wrote it.
type pview struct {
	man    *manifest // nil: no manifest yet
	manVer int64     // the manifest znode's version, -1 when absent
	// legacy is set when the store is format 1: the first commit migrates
	// it, and nothing else below is set.
	legacy *view
	// hashed says that the parts of live records have format 4's names
	// (hashedPart); else format 3's (layout.part), which the first commit
	// of a format 4 binary renames before its commit point.
	hashed bool

	recs       map[recKey]recInfo
	root       *snode
	log        []logEntry // the entries of generations (logFrom, generation]
	logBytes   int
	shardBytes int
	credit     int // shard bytes compaction may still rewrite
	// garbage is what no committed state references (chunks and parts of
	// crashed writers, shards of an interrupted split): deleted before the
	// next commit writes. legacy lists format 1 directories and parts
	// under older names that a migration left, deleted a few multis per
	// commit after it.
	garbage []string
	legacyDirs,
	legacyParts []string
}

type logEntry struct {
	gen    uint64
	chunks int
	bytes  int
}

// partNamer names the parts of the view's live records. Not safe for
// concurrent use (it keeps the last record's hash).
func (v *pview) partNamer() partNamer {
	if !v.hashed {
		return layout{}.part
	}
	var last recKey
	var h [partHashLen]byte
	known := false
	return func(k recKey, gen uint64, n uint32) string {
		if !known || k != last {
			last, h, known = k, partHash(k), true
		}
		return hashedPartOf(h, gen, n)
	}
}

// leaves counts the trie's leaves.
func (v *pview) leaves() int {
	n := 0
	v.root.walkLeaves(func(*snode) { n++ })
	return n
}

// logFrom returns the newest generation whose log entry no shard needs:
// the one before the oldest change a shard still misses.
func (v *pview) logFrom() uint64 {
	from := v.man.generation
	v.root.walkLeaves(func(l *snode) {
		if l.oldest != 0 && l.oldest-1 < from {
			from = l.oldest - 1
		}
	})
	return from
}

// manifestValue encodes the manifest of the view in the format p writes.
func (p *packer) manifestValue(v *pview) []byte {
	m := *v.man
	m.layout = formatPacked
	m.shape = encodeShape(v.root)
	return encodeManifest(&m, p.format)
}

func (p *packer) load(ctx context.Context) (*Snapshot, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errClosed
	}
	snap, v, err := p.readView(ctx)
	if err != nil {
		p.v = nil
		return nil, err
	}
	p.v = v
	return snap, nil
}

func (p *packer) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.v = nil
}

// readView reads until it gets a consistent snapshot: one during which the
// manifest did not change.
func (p *packer) readView(ctx context.Context) (*Snapshot, *pview, error) {
	var snap *Snapshot
	var v *pview
	err := readConsistent(ctx, p.lg, func() (*rawRead, error) {
		var raw *rawRead
		var err error
		snap, v, raw, err = p.readOnce(ctx)
		return raw, err
	}, p.s.stable)
	if err != nil {
		return nil, nil, err
	}
	return snap, v, nil
}

// readOnce reads the store once. raw (for the stability check) is nil when
// the read failed before the manifest was known.
func (p *packer) readOnce(ctx context.Context) (*Snapshot, *pview, *rawRead, error) {
	s := p.s
	raw, err := s.readManifest()
	if err != nil {
		return nil, nil, nil, err
	}
	var man *manifest
	format := 0
	if raw.hasMan {
		m, version, err := decodeManifest(raw.manifest, p.format)
		if err != nil {
			return nil, nil, raw, fmt.Errorf("persist: load: manifest %s: %w", s.path(manifestName), err)
		}
		if version == formatRecords {
			snap, v, raw, err := p.readLegacy(ctx)
			return snap, v, raw, err
		}
		if m.layout != formatPacked {
			return nil, nil, raw, fmt.Errorf("persist: load: manifest %s is of layout %d (etcd's records), not %d: %w",
				s.path(manifestName), m.layout, formatPacked, ErrCorrupt)
		}
		if m.framework != p.framework {
			return nil, nil, raw, fmt.Errorf("persist: load: manifest %s belongs to framework %q, not %q: %w",
				s.path(manifestName), m.framework, p.framework, ErrForeign)
		}
		man, format = m, version
	}
	ls, err := s.listPacked(ctx, raw, p.format >= formatHashedParts)
	if err != nil {
		return nil, nil, raw, err
	}
	if ls == nil { // no root znode: a store never written
		return emptySnapshot(), p.newEmptyView(), raw, nil
	}
	if len(ls.foreign) > 0 {
		return nil, nil, raw, fmt.Errorf("persist: load: %s is not a regent key: %w", s.path(ls.foreign[0]), ErrForeign)
	}
	if man == nil {
		snap, v, err := p.buildEmpty(ctx, ls)
		return snap, v, raw, err
	}
	snap, v, err := p.build(ctx, raw, man, format, ls)
	return snap, v, raw, err
}

func emptySnapshot() *Snapshot {
	return &Snapshot{Tasks: map[string][]byte{}, Entries: map[string][]byte{}}
}

// newEmptyView is the view of a store without a manifest: one empty shard,
// whose znode the first commit creates.
func (p *packer) newEmptyView() *pview {
	return &pview{manVer: -1, recs: map[recKey]recInfo{}, root: &snode{}, hashed: p.format >= formatHashedParts}
}

// readLegacy reads a format 1 store with the record engine; the first
// commit migrates it.
func (p *packer) readLegacy(ctx context.Context) (*Snapshot, *pview, *rawRead, error) {
	raw, err := p.s.read(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	snap, lv, err := p.s.eng.build(ctx, raw)
	if err != nil {
		return nil, nil, raw, err
	}
	if lv.man == nil {
		// The manifest went away meanwhile: the stability check fails.
		return snap, &pview{manVer: -1, recs: map[recKey]recInfo{}, root: &snode{}}, raw, nil
	}
	return snap, &pview{manVer: lv.manVer, legacy: lv}, raw, nil
}

// buildEmpty accepts a store without a manifest if nothing in it needs
// one: log chunks and parts are a first commit that crashed before its
// commit point, garbage. Shards, or format 1 records, without a manifest
// are corruption.
func (p *packer) buildEmpty(ctx context.Context, ls *packedList) (*Snapshot, *pview, error) {
	if len(ls.shards) > 0 {
		return nil, nil, fmt.Errorf("persist: load: %s exists but manifest %s does not: %w",
			p.s.path(ls.shards[0].rel), p.s.path(manifestName), ErrCorrupt)
	}
	v := p.newEmptyView()
	for _, c := range ls.logs {
		v.garbage = append(v.garbage, c.rel)
	}
	for _, pt := range ls.parts {
		v.garbage = append(v.garbage, pt.rel)
	}
	for _, hp := range ls.hparts {
		v.garbage = append(v.garbage, hp.rel)
	}
	if len(ls.legacy) > 0 {
		lraw, err := p.s.read(ctx)
		if err != nil {
			return nil, nil, err
		}
		if lraw.hasMan {
			return nil, nil, fmt.Errorf("manifest %s appeared: %w", p.s.path(manifestName), errVanished)
		}
		if len(lraw.records) > 0 {
			return nil, nil, fmt.Errorf("persist: load: %s exists but manifest %s does not: %w",
				p.s.path(lraw.records[0].rel), p.s.path(manifestName), ErrCorrupt)
		}
		v.legacyDirs = ls.legacy
	}
	return emptySnapshot(), v, nil
}
