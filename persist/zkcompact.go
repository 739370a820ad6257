package persist

import (
	"context"
	"fmt"
)

// pgroup is one multi of a format 2 commit.
type pgroup struct {
	phase string
	pops  []pop
	bytes int
}

// flusher packs a commit's writes into multis, in order. Every multi
// checks the fence; before the commit point it checks the manifest's
// version, from the commit point on it sets the manifest to the view's.
type flusher struct {
	p         *packer
	ctx       context.Context
	fence     Fence
	open      *pgroup
	runs      map[string]int
	committed bool
	manBytes  int // room kept in every multi for the manifest
}

func (f *flusher) cost(pp pop) int { return f.p.s.cost(&pp) }

// budget is the bytes of pops one multi carries.
func (f *flusher) budget() int {
	return f.p.lim.maxBytes - txnOverhead - max(f.manBytes, 1024)
}

func (f *flusher) fits(g *pgroup, pops ...pop) bool {
	bytes := g.bytes
	for _, pp := range pops {
		bytes += f.cost(pp)
	}
	return len(g.pops)+len(pops)+2 <= f.p.lim.maxOps && bytes <= f.budget()
}

func (f *flusher) push(pp pop) {
	f.open.pops = append(f.open.pops, pp)
	f.open.bytes += f.cost(pp)
}

// add adds pp to the open multi, running that first if pp does not fit; a
// new multi is of phase.
func (f *flusher) add(phase string, pp pop) error {
	if f.open != nil && len(f.open.pops) > 0 && !f.fits(f.open, pp) {
		if err := f.flush(); err != nil {
			return err
		}
	}
	if f.open == nil {
		f.open = &pgroup{phase: phase}
	}
	f.push(pp)
	return nil
}

// flush runs the open multi.
func (f *flusher) flush() error {
	g := f.open
	f.open = nil
	if g == nil || (len(g.pops) == 0 && g.phase != phaseCommit) {
		return nil
	}
	f.runs[g.phase]++
	if err := f.p.run(f.ctx, f.fence, g, f.committed || g.phase == phaseCommit, f.runs[g.phase]); err != nil {
		return err
	}
	if g.phase == phaseCommit {
		f.committed = true
	}
	return nil
}

// run executes one multi and calls the test hook before and after it.
func (p *packer) run(ctx context.Context, fence Fence, g *pgroup, setMan bool, n int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if p.hook != nil {
		p.hook("before "+g.phase, n)
	}
	v := p.v
	grp := &group{phase: g.phase, pops: g.pops}
	if setMan {
		grp.manifest = p.manifestValue(v)
	}
	shim := &view{manVer: v.manVer}
	if err := p.s.exec(ctx, fence, grp, shim); err != nil {
		return err
	}
	v.manVer = shim.manVer
	if p.hook != nil {
		p.hook(g.phase, n)
	}
	return nil
}

// cstep rewrites the leaves below target as the subtree sub: pre creates
// new leaves nobody sees yet (several multis if need be), final makes the
// change visible in one multi.
type cstep struct {
	target *snode
	sub    *snode
	pre    []pop
	final  []pop
	bytes  int
}

// compact rewrites the shards whose pending changes are oldest while the
// commit's credit lasts (or, beyond it, a few while the log is too long),
// and deletes the log entries no shard needs any more.
func (p *packer) compact(f *flusher) error {
	v := p.v
	forced := 0
	for {
		leaf := oldestLeaf(v.root)
		if leaf == nil {
			v.credit = 0
			return p.trimLog(f)
		}
		if v.credit <= 0 {
			if !p.overdue(v) || forced >= maxForcedSteps {
				return p.trimLog(f)
			}
			forced++
		}
		st, err := p.rewrite(v, leaf, f)
		if err != nil {
			return err
		}
		v.credit = max(v.credit-st.bytes, -4*p.shardMax)
		if err := f.step(v, st); err != nil {
			return err
		}
		if err := p.trimLog(f); err != nil {
			return err
		}
	}
}

// overdue reports whether the log is longer than Load should read.
func (p *packer) overdue(v *pview) bool {
	return len(v.log) > p.maxEntries || v.logBytes > v.shardBytes+p.maxSlack
}

func oldestLeaf(root *snode) *snode {
	var best *snode
	root.walkLeaves(func(l *snode) {
		if l.oldest != 0 && (best == nil || l.oldest < best.oldest) {
			best = l
		}
	})
	return best
}

// rewrite folds leaf's pending changes into new shard values: merged with
// its sibling when both are small, split when it outgrows the shard size.
func (p *packer) rewrite(v *pview, leaf *snode, f *flusher) (*cstep, error) {
	recs, err := p.leafRecords(v, leaf)
	if err != nil {
		return nil, err
	}
	if sib := leaf.sibling(); sib != nil && sib.leaf() && recsSize(recs) < p.shardMax/4 {
		more, err := p.leafRecords(v, sib)
		if err != nil {
			return nil, err
		}
		if recsSize(recs)+recsSize(more) < p.shardMax/2 {
			if st := p.rewriteNode(v, leaf.parent, append(recs[:len(recs):len(recs)], more...), f); st != nil {
				return st, nil
			}
		}
	}
	if st := p.rewriteNode(v, leaf, recs, f); st != nil {
		return st, nil
	}
	return nil, fmt.Errorf("persist: rewriting shard %s does not fit one multi", p.s.path(leaf.name()))
}

func recsSize(recs []shardRec) int {
	n := shardHead
	for i := range recs {
		n += shardRecSize(recs[i].rec, recs[i].data, recs[i].ref)
	}
	return n
}

// rewriteNode builds the step that replaces the leaves below target by
// the subtree that holds recs, or returns nil if its visible part would
// not fit one multi.
func (p *packer) rewriteNode(v *pview, target *snode, recs []shardRec, f *flusher) *cstep {
	var old []*snode
	target.walkLeaves(func(l *snode) { old = append(old, l) })
	sortRecs(recs)
	sub := partition(target.depth, target.prefix, recs, p.shardMax, v.man.generation)
	sub.parent = target.parent
	st := &cstep{target: target, sub: sub}
	existing := map[string]bool{}
	for _, l := range old {
		if l.exists {
			existing[l.name()] = true
		}
	}
	var creates []pop
	sub.walkLeaves(func(n *snode) {
		st.bytes += len(n.raw)
		pp := pop{rel: n.name(), value: n.raw}
		if existing[pp.rel] {
			pp.exists = true
			delete(existing, pp.rel)
			st.final = append(st.final, pp)
			return
		}
		creates = append(creates, pp)
	})
	for _, l := range old {
		if existing[l.name()] {
			st.final = append(st.final, pop{rel: l.name(), del: true})
		}
	}
	if !f.fits(&pgroup{}, st.final...) {
		return nil
	}
	for len(creates) > 0 && f.fits(&pgroup{}, append(st.final, creates[len(creates)-1])...) {
		st.final = append(st.final, creates[len(creates)-1])
		creates = creates[:len(creates)-1]
	}
	st.pre = creates
	return st
}

// leafRecords returns a leaf's records with its pending changes applied.
// Both were read or written by this replica; their checksums catch a
// caller that modified the slices a snapshot shares with them.
func (p *packer) leafRecords(v *pview, l *snode) ([]shardRec, error) {
	var recs []shardRec
	if l.raw != nil {
		sv, err := decodeShard(l.raw)
		if err != nil {
			return nil, fmt.Errorf("persist: shard %s as this replica read it: %w (were loaded values modified?)", p.s.path(l.name()), err)
		}
		recs = sv.recs
	}
	if len(l.pend) == 0 {
		return recs, nil
	}
	out := recs[:0]
	for _, r := range recs {
		if _, changed := l.pend[r.rec]; !changed {
			out = append(out, r)
		}
	}
	for k, op := range l.pend {
		info, live := v.recs[k]
		if op.del {
			if live {
				return nil, fmt.Errorf("persist: %s %q: a pending delete of a live record", k.kind, k.key)
			}
			continue
		}
		h := uint64(0)
		if op.ref != nil {
			h = recordHashCRC(k, op.ref.dataCRC, op.ref.size)
		} else {
			h = recordHash(k, op.data)
		}
		if !live || h != info.hash {
			return nil, fmt.Errorf("persist: %s %q changed in memory since it was committed or loaded (were loaded values modified?)", k.kind, k.key)
		}
		out = append(out, shardRec{rec: k, hash: shardHash(k), data: op.data, ref: op.ref})
	}
	return out, nil
}

// step runs st's invisible writes, adds its visible ones to one multi,
// and applies it to the view.
func (f *flusher) step(v *pview, st *cstep) error {
	if len(st.pre) > 0 {
		if err := f.flush(); err != nil {
			return err
		}
		for _, pp := range st.pre {
			if err := f.add(phaseCompact, pp); err != nil {
				return err
			}
		}
		if err := f.flush(); err != nil {
			return err
		}
	}
	if f.open != nil && !f.fits(f.open, st.final...) {
		if err := f.flush(); err != nil {
			return err
		}
	}
	if f.open == nil {
		f.open = &pgroup{phase: phaseCompact}
	}
	for _, pp := range st.final {
		f.push(pp)
	}
	old := 0
	st.target.walkLeaves(func(l *snode) { old += len(l.raw) })
	if par := st.target.parent; par == nil {
		v.root = st.sub
	} else if par.kids[0] == st.target {
		par.kids[0] = st.sub
	} else {
		par.kids[1] = st.sub
	}
	v.shardBytes += st.bytes - old
	return nil
}

// trimLog deletes the log entries no shard needs any more (possibly the
// commit's own, in the multi that creates it: ZooKeeper applies a multi's
// ops in order).
func (p *packer) trimLog(f *flusher) error {
	v := p.v
	from := v.logFrom()
	if from <= v.man.logFrom {
		return nil
	}
	v.man.logFrom = from
	i := 0
	var dels []pop
	for ; i < len(v.log) && v.log[i].gen <= from; i++ {
		e := v.log[i]
		for n := 0; n < e.chunks; n++ {
			dels = append(dels, pop{rel: logName(e.gen, uint32(n)), del: true})
		}
		v.logBytes -= e.bytes
	}
	v.log = v.log[i:]
	for _, d := range dels {
		if err := f.add(phaseCompact, d); err != nil {
			return err
		}
	}
	return nil
}
