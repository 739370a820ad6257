package persist

import (
	"fmt"
	"sort"
)

// txnOverhead is the request bytes of a transaction besides its ops.
const txnOverhead = 1024

// fits reports whether pops can join g.
func (e *engine) fits(g *group, pops []pop) bool {
	ops := len(g.pops) + len(pops)
	bytes := g.bytes + txnOverhead + len(g.manifest)
	if g.manifest != nil {
		ops++
	}
	if ops > e.lim.maxOps {
		return false
	}
	for i := range pops {
		bytes += e.be.cost(&pops[i])
		if bytes > e.lim.maxBytes {
			return false
		}
	}
	return true
}

// fill adds to g as many of pops, in order, as fit, and returns the rest.
func (e *engine) fill(g *group, pops []pop) []pop {
	ops := len(g.pops) + 1 // the manifest
	bytes := g.bytes + txnOverhead + len(g.manifest)
	n := 0
	for n < len(pops) {
		c := e.be.cost(&pops[n])
		if ops+1 > e.lim.maxOps || bytes+c > e.lim.maxBytes {
			break
		}
		ops++
		bytes += c
		n++
	}
	e.add(g, pops[:n]...)
	return pops[n:]
}

func (e *engine) add(g *group, pops ...pop) {
	for i := range pops {
		g.bytes += e.be.cost(&pops[i])
	}
	g.pops = append(g.pops, pops...)
}

// pack splits pops into groups within the limits, in order. reserve ops
// (and 4 KiB each) are kept free in the first group for a manifest.
func (e *engine) pack(phase string, pops []pop, reserve int) []*group {
	var out []*group
	g := &group{phase: phase}
	room := func() (int, int) {
		ops, bytes := e.lim.maxOps, e.lim.maxBytes-txnOverhead
		if len(out) == 0 {
			ops -= reserve
			bytes -= reserve * 4096
		}
		return ops, bytes
	}
	for i := range pops {
		c := e.be.cost(&pops[i])
		maxOps, maxBytes := room()
		if len(g.pops) > 0 && (len(g.pops)+1 > maxOps || g.bytes+c > maxBytes) {
			out = append(out, g)
			g = &group{phase: phase}
		}
		g.pops = append(g.pops, pops[i])
		g.bytes += c
	}
	if len(g.pops) > 0 {
		out = append(out, g)
	}
	return out
}

// planned is the physical form of a list of logical ops.
type planned struct {
	// stage writes the parts of large records under new names that no
	// record references yet: invisible until pops run, and garbage
	// (deleted by a later commit) if they never do.
	stage []pop
	// pops replace and delete records, then delete parts no longer used.
	pops []pop
	// journal is what the write-ahead journal carries: the logical ops,
	// with large records as references to their staged parts.
	journal  []lop
	changes  []recChange
	dTasks   int64
	dEntries int64
	dDigest  uint64
}

type recChange struct {
	rec   recKey
	del   bool
	info  recInfo
	parts []partID
}

// plan turns logical ops into physical writes against v. Parts are written
// before the record that references them, and old parts deleted after it,
// so that no record ever points at missing parts. Ops that carry a ref
// (rolled forward from a journal) find their parts already staged.
func (e *engine) plan(v *view, ops []lop, gen uint64) *planned {
	p := &planned{journal: make([]lop, 0, len(ops))}
	for _, o := range ops {
		k := o.rec
		old, had := v.recs[k]
		oldParts := v.parts[k]
		delta := int64(0)
		if o.del {
			if had {
				p.pops = append(p.pops, pop{rel: e.lay.record(k), del: true})
				p.dDigest ^= old.hash
				delta = -1
			}
			for _, id := range oldParts {
				p.pops = append(p.pops, pop{rel: e.lay.part(k, id.gen, id.n), del: true})
			}
			p.changes = append(p.changes, recChange{rec: k, del: true})
			p.journal = append(p.journal, o)
		} else {
			ref := o.ref
			if ref == nil && len(o.data)+inlineOverhead(k.key) > e.lim.partSize {
				ref = e.stage(p, k, o.data, gen, oldParts)
			}
			var h uint64
			var info recInfo
			var parts []partID
			if ref != nil {
				h = recordHashCRC(k, ref.dataCRC, ref.size)
				info = recInfo{hash: h, gen: ref.gen, parts: ref.parts}
				for i := uint32(0); i < ref.parts; i++ {
					parts = append(parts, partID{gen: ref.gen, n: i})
				}
				p.pops = append(p.pops, pop{rel: e.lay.record(k), value: encodeRef(k, ref), exists: had})
				p.journal = append(p.journal, lop{rec: k, ref: ref})
			} else {
				h = recordHash(k, o.data)
				info = recInfo{hash: h}
				p.pops = append(p.pops, pop{rel: e.lay.record(k), value: encodeInline(k, o.data), exists: had})
				p.journal = append(p.journal, o)
			}
			if had {
				p.dDigest ^= old.hash
			} else {
				delta = 1
			}
			p.dDigest ^= h
			for _, id := range oldParts {
				if !hasPart(parts, id) {
					p.pops = append(p.pops, pop{rel: e.lay.part(k, id.gen, id.n), del: true})
				}
			}
			p.changes = append(p.changes, recChange{rec: k, info: info, parts: parts})
		}
		if k.kind == kindTask {
			p.dTasks += delta
		} else {
			p.dEntries += delta
		}
	}
	return p
}

// stage splits data into parts of generation gen and returns the record's
// reference to them.
func (e *engine) stage(p *planned, k recKey, data []byte, gen uint64, oldParts []partID) *partsRef {
	n := (len(data) + e.lim.partSize - 1) / e.lim.partSize
	for i := 0; i < n; i++ {
		id := partID{gen: gen, n: uint32(i)}
		chunk := data[i*e.lim.partSize : min(len(data), (i+1)*e.lim.partSize)]
		p.stage = append(p.stage, pop{rel: e.lay.part(k, gen, uint32(i)), value: encodePart(k, gen, uint32(i), chunk), exists: hasPart(oldParts, id)})
	}
	return &partsRef{size: uint64(len(data)), dataCRC: checksum(data), gen: gen, parts: uint32(n)}
}

func hasPart(ids []partID, id partID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// applyPlan records in v what a successful plan wrote.
func (e *engine) applyPlan(v *view, p *planned) {
	for _, c := range p.changes {
		if c.del {
			delete(v.recs, c.rec)
			delete(v.parts, c.rec)
			continue
		}
		v.recs[c.rec] = c.info
		if len(c.parts) > 0 {
			v.parts[c.rec] = c.parts
		} else {
			delete(v.parts, c.rec)
		}
	}
}

// migrateView refuses to commit over a store of a newer format than the
// engine writes. An older one (etcd's format 1) migrates by itself: the
// commit writes the manifest in the engine's format. (ZooKeeper's format 2
// store migrates format 1 stores itself; see zkmigrate.go.)
func (e *engine) migrateView(v *view) error {
	if v.man == nil || v.format <= e.format {
		return nil
	}
	return fmt.Errorf("persist: no migration from format %d to %d: %w", v.format, e.format, ErrNewerFormat)
}

// batchOps validates b and turns it into sorted logical ops: deletes
// first, then puts, so a key both deleted and put ends up put.
func batchOps(b *Batch, maxKey, maxRecord int) ([]lop, error) {
	idx := make(map[recKey]int, len(b.PutTasks)+len(b.DeleteTasks)+len(b.PutEntries)+len(b.DeleteEntries))
	var ops []lop
	add := func(o lop) error {
		if o.rec.key == "" {
			return fmt.Errorf("persist: commit: empty %s key", o.rec.kind)
		}
		if len(o.rec.key) > maxKey {
			return fmt.Errorf("persist: commit: %s key of %d bytes, longer than %d: %w", o.rec.kind, len(o.rec.key), maxKey, ErrTooLarge)
		}
		if len(o.data) > maxRecord {
			return fmt.Errorf("persist: commit: %s %q of %d bytes, larger than %d: %w", o.rec.kind, o.rec.key, len(o.data), maxRecord, ErrTooLarge)
		}
		if i, ok := idx[o.rec]; ok {
			ops[i] = o
			return nil
		}
		idx[o.rec] = len(ops)
		ops = append(ops, o)
		return nil
	}
	if b.FrameworkID != nil && len(*b.FrameworkID) > maxKey {
		return nil, fmt.Errorf("persist: commit: framework id of %d bytes, longer than %d: %w", len(*b.FrameworkID), maxKey, ErrTooLarge)
	}
	for _, id := range b.DeleteTasks {
		if err := add(lop{rec: recKey{kindTask, id}, del: true}); err != nil {
			return nil, err
		}
	}
	for _, k := range b.DeleteEntries {
		if err := add(lop{rec: recKey{kindEntry, k}, del: true}); err != nil {
			return nil, err
		}
	}
	for id, data := range b.PutTasks {
		if err := add(lop{rec: recKey{kindTask, id}, data: data}); err != nil {
			return nil, err
		}
	}
	for k, data := range b.PutEntries {
		if err := add(lop{rec: recKey{kindEntry, k}, data: data}); err != nil {
			return nil, err
		}
	}
	sort.Slice(ops, func(i, j int) bool {
		if ops[i].rec.kind != ops[j].rec.kind {
			return ops[i].rec.kind > ops[j].rec.kind // tasks ('t') first
		}
		return ops[i].rec.key < ops[j].rec.key
	})
	return ops, nil
}
