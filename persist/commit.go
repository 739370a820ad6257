package persist

import (
	"context"
	"fmt"
	"sort"

	"go.uber.org/zap"
)

// maxRecordCap bounds any declared size regardless of options.
const maxRecordCap = 1 << 30

// commit applies b under fence.
func (e *engine) commit(ctx context.Context, fence Fence, b Batch) (uint64, error) {
	ops, err := batchOps(&b, e.lim.maxKey, e.lim.maxRecord)
	if err != nil {
		return 0, err
	}
	if fence.Key == "" {
		return 0, fmt.Errorf("persist: commit with an empty fence: %w", ErrFenced)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return 0, errClosed
	}
	if e.v == nil {
		// Never loaded, or the last commit failed: read the store first, and
		// refuse to write over one that is corrupt, newer or foreign.
		_, v, err := e.readView(ctx)
		if err != nil {
			return 0, fmt.Errorf("persist: commit: %w", err)
		}
		e.v = v
	}
	gen, err := e.commitLocked(ctx, fence, ops, b.FrameworkID)
	if err != nil {
		e.v = nil
		e.be.forget()
	}
	return gen, err
}

func (e *engine) commitLocked(ctx context.Context, fence Fence, ops []lop, fwid *string) (uint64, error) {
	if err := e.migrateView(e.v); err != nil {
		return 0, err
	}
	e.v.format = e.format // what this commit writes
	if err := e.be.prepare(ctx, fence); err != nil {
		return 0, err
	}
	if len(e.v.pending) > 0 || (e.v.man != nil && e.v.man.applying) {
		if err := e.rollForward(ctx, fence); err != nil {
			return 0, fmt.Errorf("persist: commit: finish the interrupted commit of generation %d: %w", e.v.man.generation, err)
		}
	}
	v := e.v
	gen := uint64(1)
	next := manifest{framework: e.framework}
	if v.man != nil {
		next = *v.man
		gen = v.man.generation + 1
	}
	next.generation = gen
	next.applying = false
	next.layout, next.writer = formatRecords, fence
	if fwid != nil {
		next.frameworkID = *fwid
	}
	p := e.plan(v, ops, gen)
	next.tasks = uint64(int64(next.tasks) + p.dTasks)
	next.entries = uint64(int64(next.entries) + p.dEntries)
	next.digest ^= p.dDigest

	if cleanup := e.cleanupPops(v); len(cleanup) > 0 {
		for i, g := range e.pack(phaseCleanup, cleanup, 0) {
			if err := e.run(ctx, fence, g, i+1); err != nil {
				return 0, fmt.Errorf("persist: commit generation %d: delete garbage: %w", gen, err)
			}
		}
		e.lg.Info("persist: deleted garbage of crashed writers", zap.Int("keys", len(cleanup)))
		v.journal = map[string]struct{}{}
		v.orphans = nil
	}
	// One transaction if everything fits.
	single := &group{phase: phaseSingle, manifest: encodeManifest(&next, e.format)}
	all := append(append(make([]pop, 0, len(p.stage)+len(p.pops)), p.stage...), p.pops...)
	if e.fits(single, all) {
		e.add(single, all...)
		if err := e.run(ctx, fence, single, 1); err != nil {
			return 0, fmt.Errorf("persist: commit generation %d: %w", gen, err)
		}
		e.applyPlan(v, p)
		v.man = &next
		return gen, nil
	}
	// Large records first: their parts stay invisible until a record
	// references them.
	for i, g := range e.pack(phaseStage, p.stage, 0) {
		if err := e.run(ctx, fence, g, i+1); err != nil {
			return 0, fmt.Errorf("persist: commit generation %d: stage parts: %w", gen, err)
		}
	}
	if e.fits(single, p.pops) {
		e.add(single, p.pops...)
		if err := e.run(ctx, fence, single, 1); err != nil {
			return 0, fmt.Errorf("persist: commit generation %d: %w", gen, err)
		}
		e.applyPlan(v, p)
		v.man = &next
		return gen, nil
	}
	return e.commitJournaled(ctx, fence, fwid, p, &next)
}

// commitJournaled commits through the write-ahead journal: write the
// journal, mark the manifest (the commit point), apply, clear. The
// journal's last chunks and the first records to apply ride in the mark's
// transaction, and the last records in the clear's: fewer round trips,
// the same atomicity.
func (e *engine) commitJournaled(ctx context.Context, fence Fence, fwid *string, p *planned, next *manifest) (uint64, error) {
	v := e.v
	gen := next.generation
	jw := newJournalWriter(gen, e.lim.partSize)
	if fwid != nil {
		jw.frameworkID(*fwid)
	}
	for _, o := range p.journal {
		jw.op(o)
	}
	chunks := jw.finish()
	if len(chunks) == 0 {
		return 0, fmt.Errorf("persist: commit generation %d: nothing to journal", gen)
	}
	jpops := make([]pop, len(chunks))
	for i, c := range chunks {
		jpops[i] = pop{rel: journalName(gen, uint32(i)), value: c}
	}
	marked := *next
	marked.applying, marked.applyGen, marked.applyChunks = true, gen, uint64(len(chunks))
	mark := &group{phase: phaseMark, manifest: encodeManifest(&marked, e.format)}
	jgroups := e.pack(phaseJournal, jpops, 0)
	if last := jgroups[len(jgroups)-1]; e.fits(mark, last.pops) {
		e.add(mark, last.pops...)
		jgroups = jgroups[:len(jgroups)-1]
	}
	for i, g := range jgroups {
		if err := e.run(ctx, fence, g, i+1); err != nil {
			return 0, fmt.Errorf("persist: commit generation %d: write journal: %w", gen, err)
		}
		for _, jp := range g.pops {
			v.journal[jp.rel] = struct{}{}
		}
	}
	rest := e.fill(mark, p.pops)
	if err := e.run(ctx, fence, mark, 1); err != nil {
		return 0, fmt.Errorf("persist: commit generation %d: mark the journal: %w", gen, err)
	}
	// The commit point has passed: the journal makes the commit whole for
	// every reader. A failure from here on leaves the rest to the next
	// commit (or the next leader's), which rolls the journal forward.
	for _, jp := range jpops {
		v.journal[jp.rel] = struct{}{}
	}
	v.man = &marked
	if err := e.applyAndClear(ctx, fence, p, rest, next); err != nil {
		e.lg.Warn("persist: commit is durable but its journal was not fully applied; the next commit finishes it",
			zap.Uint64("generation", gen), zap.Error(err))
		e.v = nil
		e.be.forget()
	}
	return gen, nil
}

// applyAndClear writes rest (what p still has to apply) and clears the
// journal mark, setting the manifest to next.
func (e *engine) applyAndClear(ctx context.Context, fence Fence, p *planned, rest []pop, next *manifest) error {
	v := e.v
	groups := e.pack(phaseApply, rest, 0)
	clear := &group{phase: phaseClear, manifest: encodeManifest(next, e.format)}
	if n := len(groups); n > 0 && e.fits(clear, groups[n-1].pops) {
		e.add(clear, groups[n-1].pops...)
		groups = groups[:n-1]
	}
	for i, g := range groups {
		if err := e.run(ctx, fence, g, i+1); err != nil {
			return fmt.Errorf("apply: %w", err)
		}
	}
	var dels []pop
	if e.lim.rangeDelete {
		dels = []pop{{rel: journalDir + "/", del: true, prefix: true}}
	} else {
		for _, rel := range sortedKeys(v.journal) {
			dels = append(dels, pop{rel: rel, del: true})
		}
	}
	dels = e.fill(clear, dels)
	if err := e.run(ctx, fence, clear, 1); err != nil {
		return fmt.Errorf("clear the journal: %w", err)
	}
	e.applyPlan(v, p)
	v.man = next
	e.forgetJournal(v, clear.pops)
	// Chunks that did not fit are garbage once the mark is gone.
	for i, g := range e.pack(phaseClear, dels, 0) {
		if err := e.run(ctx, fence, g, i+2); err != nil {
			return fmt.Errorf("delete the journal: %w", err)
		}
		e.forgetJournal(v, g.pops)
	}
	return nil
}

// forgetJournal drops the journal chunks pops deleted from v.
func (e *engine) forgetJournal(v *view, pops []pop) {
	for _, d := range pops {
		if d.prefix {
			v.journal = map[string]struct{}{}
		} else if d.del {
			delete(v.journal, d.rel)
		}
	}
}

// rollForward finishes a journaled commit that Load found marked.
func (e *engine) rollForward(ctx context.Context, fence Fence) error {
	v := e.v
	e.lg.Info("persist: finishing an interrupted journaled commit",
		zap.Uint64("generation", v.man.generation), zap.Int("ops", len(v.pending)))
	p := e.plan(v, v.pending, v.man.generation)
	cleared := *v.man
	cleared.applying, cleared.applyGen, cleared.applyChunks = false, 0, 0
	cleared.writer = fence // this term writes the manifest now
	if err := e.applyAndClear(ctx, fence, p, p.pops, &cleared); err != nil {
		return err
	}
	v.pending = nil
	v.orphans = orphanParts(e.lay, v)
	return nil
}

// cleanupPops deletes garbage: journal chunks of crashed writers and
// orphaned parts.
func (e *engine) cleanupPops(v *view) []pop {
	var out []pop
	if len(v.journal) > 0 {
		if e.lim.rangeDelete {
			out = append(out, pop{rel: journalDir + "/", del: true, prefix: true})
		} else {
			for _, rel := range sortedKeys(v.journal) {
				out = append(out, pop{rel: rel, del: true})
			}
		}
	}
	for _, rel := range v.orphans {
		out = append(out, pop{rel: rel, del: true})
	}
	return out
}

func sortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// run executes one group and calls the test hook.
func (e *engine) run(ctx context.Context, fence Fence, g *group, n int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if e.hook != nil {
		e.hook("before "+g.phase, n)
	}
	if err := e.be.exec(ctx, fence, g, e.v); err != nil {
		return err
	}
	if e.hook != nil {
		e.hook(g.phase, n)
	}
	return nil
}
