package persist

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"
)

// Commit phases of format 2, as the test hook sees them (with phaseStage
// and phaseCleanup).
const (
	phaseLog     = "log"     // log chunks that do not fit the commit's multi: invisible
	phaseCommit  = "commit"  // the multi that advances the manifest: the commit point
	phaseCompact = "compact" // shard rewrites and log deletions after it
	phaseMigrate = "migrate" // the shards of a format 1 store, before its migrating commit
	phaseRename  = "rename"  // parts copied to their format 4 names, before the commit that writes format 4
	phaseLegacy  = "legacy"  // deleting what a migration left: format 1 znodes, parts under format 3 names
)

func (p *packer) commit(ctx context.Context, fence Fence, b Batch) (uint64, error) {
	ops, err := batchOps(&b, p.lim.maxKey, p.lim.maxRecord)
	if err != nil {
		return 0, err
	}
	if fence.Key == "" {
		return 0, fmt.Errorf("persist: commit with an empty fence: %w", ErrFenced)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, errClosed
	}
	if p.v == nil {
		// Never loaded, or the last commit failed: read the store first, and
		// refuse to write over one that is corrupt, newer or foreign.
		_, v, err := p.readView(ctx)
		if err != nil {
			return 0, fmt.Errorf("persist: commit: %w", err)
		}
		p.v = v
	}
	var gen uint64
	if p.v.legacy != nil {
		gen, err = p.migrate(ctx, fence, ops, b.FrameworkID)
	} else {
		gen, err = p.commitPacked(ctx, fence, ops, b.FrameworkID)
	}
	if err != nil {
		p.v = nil
		p.s.forget()
	}
	return gen, err
}

// pplan is the physical form of one commit's ops.
type pplan struct {
	stage    []pop // parts of large records, invisible until the commit
	log      []pop // the log entry's chunks
	logBytes int
	delParts []pop // parts of replaced or deleted records, after the commit
	changes  []pchange
	dTasks   int64
	dEntries int64
	dDigest  uint64
}

type pchange struct {
	rec  recKey
	op   pendOp
	info recInfo
}

// plan turns ops into the log entry of generation gen, the parts to stage
// and delete, and the changes to the view. Inline data is copied: the
// view keeps it until the record's shard is rewritten.
func (p *packer) plan(v *pview, ops []lop, gen uint64) *pplan {
	pl := &pplan{}
	name := v.partNamer()
	lw := newLogWriter(gen, p.lim.partSize)
	size := 0
	for _, o := range ops {
		size += len(o.data)
	}
	arena := make([]byte, 0, size)
	for _, o := range ops {
		k := o.rec
		old, had := v.recs[k]
		if o.del && !had {
			continue
		}
		delta := int64(0)
		if had {
			pl.dDigest ^= old.hash
		}
		ch := pchange{rec: k, op: pendOp{gen: gen, del: o.del}}
		switch {
		case o.del:
			delta = -1
			lw.op(o)
		case len(o.data)+inlineOverhead(k.key) > p.lim.partSize:
			ref := p.stage(pl, k, o.data, gen, name)
			ch.op.ref = ref
			ch.info = recInfo{hash: recordHashCRC(k, ref.dataCRC, ref.size), gen: ref.gen, parts: ref.parts}
			lw.op(lop{rec: k, ref: ref})
		default:
			arena = append(arena, o.data...)
			ch.op.data = arena[len(arena)-len(o.data) : len(arena) : len(arena)]
			ch.info = recInfo{hash: recordHash(k, ch.op.data)}
			lw.op(lop{rec: k, data: ch.op.data})
		}
		if !o.del {
			pl.dDigest ^= ch.info.hash
			if !had {
				delta = 1
			}
		}
		if old.parts > 0 && (o.del || ch.info.gen != old.gen || ch.info.parts == 0) {
			for i := uint32(0); i < old.parts; i++ {
				pl.delParts = append(pl.delParts, pop{rel: name(k, old.gen, i), del: true})
			}
		}
		if k.kind == kindTask {
			pl.dTasks += delta
		} else {
			pl.dEntries += delta
		}
		pl.changes = append(pl.changes, ch)
	}
	for i, c := range lw.finish() {
		pl.log = append(pl.log, pop{rel: logName(gen, uint32(i)), value: c})
		pl.logBytes += len(c)
	}
	return pl
}

// stage splits a large record into parts of generation gen, which name
// names.
func (p *packer) stage(pl *pplan, k recKey, data []byte, gen uint64, name partNamer) *partsRef {
	ps := p.lim.partSize
	n := (len(data) + ps - 1) / ps
	for i := 0; i < n; i++ {
		chunk := data[i*ps : min(len(data), (i+1)*ps)]
		pl.stage = append(pl.stage, pop{rel: name(k, gen, uint32(i)), value: encodePart(k, gen, uint32(i), chunk)})
	}
	return &partsRef{size: uint64(len(data)), dataCRC: checksum(data), gen: gen, parts: uint32(n)}
}

// applyCommit makes v the state after pl, committed as generation gen.
func (p *packer) applyCommit(v *pview, pl *pplan, gen uint64, fwid *string, fence Fence) {
	next := manifest{framework: p.framework}
	if v.man != nil {
		next = *v.man
	}
	next.generation, next.layout, next.writer = gen, formatPacked, fence
	if fwid != nil {
		next.frameworkID = *fwid
	}
	next.tasks = uint64(int64(next.tasks) + pl.dTasks)
	next.entries = uint64(int64(next.entries) + pl.dEntries)
	next.digest ^= pl.dDigest
	v.man = &next
	for _, c := range pl.changes {
		if c.op.del {
			delete(v.recs, c.rec)
		} else {
			v.recs[c.rec] = c.info
		}
		v.root.find(shardHash(c.rec)).addPend(c.rec, c.op)
	}
	v.log = append(v.log, logEntry{gen: gen, chunks: len(pl.log), bytes: pl.logBytes})
	v.logBytes += pl.logBytes
	v.credit += p.ratio * pl.logBytes
}

// commitPacked commits ops as the next generation: staged parts and the
// log chunks that do not fit go first (invisible), then one multi writes
// the rest of the log entry and the manifest (the commit point), then
// compaction rewrites shards and deletes what the log no longer needs.
// The multis after the commit point change nothing a reader sees. The
// first commit of a format 4 binary to an older store renames its parts
// first (renameParts).
func (p *packer) commitPacked(ctx context.Context, fence Fence, ops []lop, fwid *string) (uint64, error) {
	v := p.v
	if err := p.s.prepare(ctx, fence); err != nil {
		return 0, err
	}
	f := &flusher{p: p, ctx: ctx, fence: fence, runs: map[string]int{}}
	if err := p.deleteGarbage(f); err != nil {
		return 0, fmt.Errorf("persist: commit: delete garbage: %w", err)
	}
	if err := p.renameParts(f); err != nil {
		return 0, fmt.Errorf("persist: commit: migrate to format %d: %w", p.format, err)
	}
	gen := uint64(1)
	if v.man != nil {
		gen = v.man.generation + 1
	}
	pl := p.plan(v, ops, gen)
	for _, pp := range pl.stage {
		if err := f.add(phaseStage, pp); err != nil {
			return 0, fmt.Errorf("persist: commit generation %d: stage parts: %w", gen, err)
		}
	}
	if err := f.flush(); err != nil {
		return 0, fmt.Errorf("persist: commit generation %d: stage parts: %w", gen, err)
	}
	// The log chunks that do not fit the commit's multi (with the manifest
	// it will carry) go first; their generation is not committed yet.
	f.manBytes = v.manifestEstimate(p, gen, fwid, fence) + 1024
	last := len(pl.log)
	for room := f.budget(); last > 0 && f.cost(pl.log[last-1]) <= room; last-- {
		room -= f.cost(pl.log[last-1])
	}
	for _, lp := range pl.log[:last] {
		if err := f.add(phaseLog, lp); err != nil {
			return 0, fmt.Errorf("persist: commit generation %d: write log: %w", gen, err)
		}
	}
	if err := f.flush(); err != nil {
		return 0, fmt.Errorf("persist: commit generation %d: write log: %w", gen, err)
	}
	f.open = &pgroup{phase: phaseCommit}
	for _, lp := range pl.log[last:] {
		f.push(lp)
	}
	p.applyCommit(v, pl, gen, fwid, fence)
	if root := v.root; root.leaf() && !root.exists {
		// A new store: its one shard, empty, as of generation 0.
		root.raw, root.exists = encodeShard(0, 0, 0, nil), true
		f.push(pop{rel: root.name(), value: root.raw})
	}
	err := p.afterCommit(f, pl)
	if !f.committed {
		return 0, fmt.Errorf("persist: commit generation %d: %w", gen, err)
	}
	if err != nil {
		// The commit is durable: what failed only tidies up. The next commit
		// (this leader's, after a reload, or the next one's) goes on.
		p.lg.Warn("persist: commit is durable but its compaction failed; the next commit reloads",
			zap.Uint64("generation", gen), zap.Error(err))
		p.v = nil
		p.s.forget()
	}
	return gen, nil
}

// afterCommit adds the deletes and compaction that ride with the commit's
// multi or follow it, and flushes.
func (p *packer) afterCommit(f *flusher, pl *pplan) error {
	for _, d := range pl.delParts {
		if err := f.add(phaseCompact, d); err != nil {
			return err
		}
	}
	if err := p.compact(f); err != nil {
		// The commit's own writes are whole: send them anyway.
		return errors.Join(err, f.flush())
	}
	if err := f.flush(); err != nil {
		return err
	}
	return p.deleteLegacy(f)
}

// manifestEstimate bounds the size of the manifests the commit of gen
// writes (before splits, which add a few bits each).
func (v *pview) manifestEstimate(p *packer, gen uint64, fwid *string, fence Fence) int {
	m := manifest{framework: p.framework, generation: gen, digest: ^uint64(0), tasks: 1 << 40, entries: 1 << 40,
		layout: formatPacked, writer: fence}
	if v.man != nil {
		m.frameworkID, m.logFrom = v.man.frameworkID, v.man.logFrom
	}
	if fwid != nil {
		m.frameworkID = *fwid
	}
	m.shape = encodeShape(v.root)
	return len(encodeManifest(&m, p.format))
}

// deleteGarbage deletes what no committed state references, before the
// commit writes names it might reuse.
func (p *packer) deleteGarbage(f *flusher) error {
	v := p.v
	if len(v.garbage) == 0 {
		return nil
	}
	for _, rel := range v.garbage {
		if err := f.add(phaseCleanup, pop{rel: rel, del: true}); err != nil {
			return err
		}
	}
	if err := f.flush(); err != nil {
		return err
	}
	p.lg.Info("persist: deleted garbage of crashed writers", zap.Int("znodes", len(v.garbage)))
	v.garbage = nil
	return nil
}
