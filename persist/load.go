package persist

import (
	"context"
	"errors"
	"fmt"
	"sort"
)

// errVanished means a listed node disappeared before it was read.
var errVanished = errors.New("node vanished while reading")

// build decodes and verifies raw. It returns the logical snapshot and the
// physical view.
func (e *engine) build(ctx context.Context, raw *rawRead) (*Snapshot, *view, error) {
	if len(raw.foreign) > 0 {
		return nil, nil, fmt.Errorf("persist: load: %s is not a regent key: %w", e.be.path(raw.foreign[0]), ErrForeign)
	}
	v := &view{
		manVer:  raw.manVer,
		recs:    make(map[recKey]recInfo, len(raw.records)),
		parts:   map[recKey][]partID{},
		journal: map[string]struct{}{},
	}
	for _, j := range raw.journal {
		v.journal[j.rel] = struct{}{}
	}
	if e.keepData {
		v.data = make(map[recKey]recData, len(raw.records))
		v.stray = raw.stray
	}
	for _, p := range raw.parts {
		v.parts[p.rec] = append(v.parts[p.rec], p.id)
	}
	snap := &Snapshot{Tasks: make(map[string][]byte, len(raw.records)), Entries: map[string][]byte{}}
	if !raw.hasMan {
		return snap, v, e.checkNoManifest(raw)
	}
	man, version, err := decodeManifest(raw.manifest, e.format)
	if err != nil {
		return nil, nil, fmt.Errorf("persist: load: manifest %s: %w", e.be.path(manifestName), err)
	}
	if man.layout != formatRecords {
		return nil, nil, fmt.Errorf("persist: load: manifest %s is of layout %d (ZooKeeper's packed shards), not %d: %w",
			e.be.path(manifestName), man.layout, formatRecords, ErrCorrupt)
	}
	if man.framework != e.framework {
		return nil, nil, fmt.Errorf("persist: load: manifest %s belongs to framework %q, not %q: %w",
			e.be.path(manifestName), man.framework, e.framework, ErrForeign)
	}
	v.man, v.format = man, version
	snap.Format, snap.Generation, snap.FrameworkID, snap.Writer = version, man.generation, man.frameworkID, man.writer

	var sum tally
	if err := e.readRecords(ctx, raw, snap, v, &sum); err != nil {
		return nil, nil, err
	}
	if man.applying {
		// A journaled commit passed its commit point and may be partly
		// applied: replay its journal onto what was read.
		if err := e.replay(ctx, raw, man, snap, v, &sum); err != nil {
			return nil, nil, err
		}
	}
	v.orphans = orphanParts(e.lay, v)
	if sum.tasks != man.tasks || sum.entries != man.entries {
		return nil, nil, fmt.Errorf("persist: load: manifest %s counts %d tasks and %d entries, the store holds %d and %d: %w",
			e.be.path(manifestName), man.tasks, man.entries, sum.tasks, sum.entries, ErrCorrupt)
	}
	if sum.digest != man.digest {
		return nil, nil, fmt.Errorf("persist: load: manifest %s: records do not match its digest (a record was replaced or lost): %w",
			e.be.path(manifestName), ErrCorrupt)
	}
	return snap, v, nil
}

// tally is what Load checks against the manifest.
type tally struct {
	tasks, entries uint64
	digest         uint64
}

func (t *tally) add(k recKey, h uint64) {
	t.digest ^= h
	if k.kind == kindTask {
		t.tasks++
	} else {
		t.entries++
	}
}

func (t *tally) remove(k recKey, h uint64) {
	t.digest ^= h
	if k.kind == kindTask {
		t.tasks--
	} else {
		t.entries--
	}
}

// checkNoManifest accepts a store without a manifest only if it holds no
// records: journal chunks alone are a first commit that crashed before its
// commit point, garbage the next commit deletes.
func (e *engine) checkNoManifest(raw *rawRead) error {
	var rel string
	switch {
	case len(raw.records) > 0:
		rel = raw.records[0].rel
	case len(raw.parts) > 0:
		rel = raw.parts[0].rel
	default:
		return nil
	}
	return fmt.Errorf("persist: load: %s exists but manifest %s does not: %w", e.be.path(rel), e.be.path(manifestName), ErrCorrupt)
}

// readRecords decodes every record read, assembling large ones from their
// parts, into snap and v.
func (e *engine) readRecords(ctx context.Context, raw *rawRead, snap *Snapshot, v *view, sum *tally) error {
	for _, rr := range raw.records {
		rec, err := decodeRecord(rr.value, e.format)
		if err != nil {
			return fmt.Errorf("persist: load: %s %s: %w", rr.rec.kind, e.be.path(rr.rel), err)
		}
		if rec.kind != rr.rec.kind || rec.key != rr.rec.key {
			return fmt.Errorf("persist: load: %s holds the %s %q: %w", e.be.path(rr.rel), rec.kind, rec.key, ErrCorrupt)
		}
		data, info := rec.data, recInfo{}
		if rec.form == formParts {
			ref := &rec.ref
			if data, err = e.assemble(ctx, raw, rr.rec, e.be.path(rr.rel), ref, e.lay.part); err != nil {
				return err
			}
			info = recInfo{hash: recordHashCRC(rr.rec, ref.dataCRC, ref.size), gen: ref.gen, parts: ref.parts}
		} else {
			info.hash = recordHash(rr.rec, data)
		}
		v.recs[rr.rec] = info
		if v.data != nil {
			if rec.form == formParts {
				v.data[rr.rec] = recData{ref: &rec.ref}
			} else {
				v.data[rr.rec] = recData{data: rec.data}
			}
		}
		sum.add(rr.rec, info.hash)
		snapMap(snap, rr.rec.kind)[rr.rec.key] = data
	}
	return nil
}

// replay applies the journal that man's mark names to snap, and keeps its
// ops in v for the next commit to finish.
func (e *engine) replay(ctx context.Context, raw *rawRead, man *manifest, snap *Snapshot, v *view, sum *tally) error {
	ops, fwid, err := e.readJournal(ctx, raw, man)
	if err != nil {
		return err
	}
	for _, o := range ops {
		m := snapMap(snap, o.rec.kind)
		if cur, had := m[o.rec.key]; had {
			sum.remove(o.rec, recordHash(o.rec, cur))
			delete(m, o.rec.key)
		}
		if o.del {
			continue
		}
		data := o.data
		if o.ref != nil {
			data, err = e.assemble(ctx, raw, o.rec, "the journal's "+o.rec.kind.String()+" "+o.rec.key, o.ref, e.lay.part)
			if err != nil {
				return err
			}
		}
		m[o.rec.key] = data
		sum.add(o.rec, recordHash(o.rec, data))
	}
	if fwid != nil {
		snap.FrameworkID = *fwid
	}
	v.pending = ops
	return nil
}

func snapMap(s *Snapshot, k recKind) map[string][]byte {
	if k == kindTask {
		return s.Tasks
	}
	return s.Entries
}

// orphanParts lists parts that no record references and that no pending
// journal op will rewrite: garbage for the next commit to delete.
func orphanParts(lay layout, v *view) []string {
	var pend map[recKey]bool
	if len(v.pending) > 0 {
		pend = make(map[recKey]bool, len(v.pending))
		for _, o := range v.pending {
			pend[o.rec] = true
		}
	}
	var out []string
	for k, ids := range v.parts {
		if pend[k] {
			continue
		}
		info, ok := v.recs[k]
		var keep []partID
		for _, id := range ids {
			if ok && id.gen == info.gen && id.n < info.parts {
				keep = append(keep, id)
				continue
			}
			out = append(out, lay.part(k, id.gen, id.n))
		}
		if len(keep) == 0 {
			delete(v.parts, k)
		} else {
			v.parts[k] = keep
		}
	}
	sort.Strings(out)
	return out
}

// partNamer names part n of generation gen of a record: layout.part
// (formats 1 to 3) or hashedPart (ZooKeeper's format 4).
type partNamer func(k recKey, gen uint64, n uint32) string

// assemble reads and checks the parts of a large record, which name
// names; where names the record in errors.
func (e *engine) assemble(ctx context.Context, raw *rawRead, k recKey, where string, ref *partsRef, name partNamer) ([]byte, error) {
	if ref.size > maxRecordCap || uint64(ref.parts) > ref.size {
		return nil, fmt.Errorf("persist: load: %s declares %d bytes in %d parts: %w", where, ref.size, ref.parts, ErrCorrupt)
	}
	rels := make([]string, ref.parts)
	for i := range rels {
		rels[i] = name(k, ref.gen, uint32(i))
	}
	vals, err := raw.fetch(ctx, rels)
	if err != nil {
		return nil, fmt.Errorf("persist: load: parts of %s: %w", where, err)
	}
	data := make([]byte, 0, min(ref.size, uint64(len(vals))*uint64(e.lim.partSize+headerSize)))
	for i, val := range vals {
		if val == nil {
			return nil, fmt.Errorf("persist: load: part %s of %s is missing: %w", e.be.path(rels[i]), where, ErrCorrupt)
		}
		pt, err := decodePart(val, formatRecords)
		if err != nil {
			return nil, fmt.Errorf("persist: load: part %s: %w", e.be.path(rels[i]), err)
		}
		if pt.kind != k.kind || pt.key != k.key || pt.gen != ref.gen || pt.n != uint64(i) {
			return nil, fmt.Errorf("persist: load: part %s belongs to another record: %w", e.be.path(rels[i]), ErrCorrupt)
		}
		data = append(data, pt.data...)
	}
	if uint64(len(data)) != ref.size || checksum(data) != ref.dataCRC {
		return nil, fmt.Errorf("persist: load: parts of %s do not add up to its %d bytes and checksum: %w", where, ref.size, ErrCorrupt)
	}
	return data, nil
}

// readJournal reads the journal a manifest's applying mark names and turns
// it back into logical ops.
func (e *engine) readJournal(ctx context.Context, raw *rawRead, man *manifest) ([]lop, *string, error) {
	if man.applyChunks > uint64(len(raw.journal)) {
		return nil, nil, fmt.Errorf("persist: load: manifest %s names %d journal chunks, %d exist: %w",
			e.be.path(manifestName), man.applyChunks, len(raw.journal), ErrCorrupt)
	}
	rels := make([]string, man.applyChunks)
	for i := range rels {
		rels[i] = journalName(man.applyGen, uint32(i))
	}
	vals, err := raw.fetch(ctx, rels)
	if err != nil {
		return nil, nil, fmt.Errorf("persist: load: journal: %w", err)
	}
	chunks := make([]*journalChunk, len(vals))
	for i, val := range vals {
		if val == nil {
			return nil, nil, fmt.Errorf("persist: load: journal chunk %s is missing: %w", e.be.path(rels[i]), ErrCorrupt)
		}
		c, err := decodeJournal(val, e.format)
		if err != nil {
			return nil, nil, fmt.Errorf("persist: load: journal chunk %s: %w", e.be.path(rels[i]), err)
		}
		if c.gen != man.applyGen || c.n != uint64(i) {
			return nil, nil, fmt.Errorf("persist: load: journal chunk %s is chunk %d of generation %d: %w",
				e.be.path(rels[i]), c.n, c.gen, ErrCorrupt)
		}
		chunks[i] = c
	}
	return opsFromChunks(chunks, func(i int) string { return "journal chunk " + e.be.path(rels[i]) })
}

// opsFromChunks turns the decoded chunks of one journal or log entry back
// into logical ops, joining the fragments of values split across chunks;
// name(i) names chunk i in errors.
func opsFromChunks(chunks []*journalChunk, name func(i int) string) ([]lop, *string, error) {
	var ops []lop
	var fwid *string
	var cur *lop
	var curSize uint64
	for i, c := range chunks {
		for _, o := range c.ops {
			bad := func(what string) error {
				return fmt.Errorf("persist: load: %s: %s: %w", name(i), what, ErrCorrupt)
			}
			if cur != nil && (o.code != jopPut || o.rec != cur.rec || o.offset != uint64(len(cur.data))) {
				return nil, nil, bad("value of " + cur.rec.key + " is cut short")
			}
			switch o.code {
			case jopFrameworkID:
				id := o.fwid
				fwid = &id
			case jopDelete:
				ops = append(ops, lop{rec: o.rec, del: true})
			case jopPutRef:
				ref := o.ref
				ops = append(ops, lop{rec: o.rec, ref: &ref})
			case jopPut:
				if cur == nil {
					if o.offset != 0 {
						return nil, nil, bad("value fragment without its start")
					}
					if o.size > maxRecordCap {
						return nil, nil, bad("value too large")
					}
					if uint64(len(o.frag)) == o.size {
						// The whole value: keep the chunk's bytes.
						ops = append(ops, lop{rec: o.rec, data: o.frag})
						continue
					}
					curSize = o.size
					ops = append(ops, lop{rec: o.rec, data: make([]byte, 0, len(o.frag))})
					cur = &ops[len(ops)-1]
				}
				cur.data = append(cur.data, o.frag...)
				if uint64(len(cur.data)) == curSize {
					cur = nil
				}
			}
		}
	}
	if cur != nil {
		return nil, nil, fmt.Errorf("persist: load: %s ends inside a value: %w", name(len(chunks)-1), ErrCorrupt)
	}
	return ops, fwid, nil
}
