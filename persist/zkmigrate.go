package persist

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"
)

// migrate commits ops to a format 1 store, which Load read successfully,
// and migrates it to the packed layout (format 4 now) on the way:
//
//  1. cleanup: delete format 1 garbage and what an interrupted migration
//     left in shards/, log/ and blobs/'s buckets (a format 1 reader ignores
//     them);
//  2. migrate: write the state as read (generation G) into new shards,
//     which no format 1 reader looks at;
//  3. rename: copy the parts of large records to their format 4 names
//     (renameParts);
//  4. commit: the commit of generation G+1 as usual, whose multi replaces
//     the format 1 manifest by a format 4 one (the commit point);
//  5. legacy: after it, delete the format 1 records, buckets, journal and
//     parts, a few multis per commit (Load ignores them).
//
// A crash before the commit point leaves the format 1 store as it was.
func (p *packer) migrate(ctx context.Context, fence Fence, ops []lop, fwid *string) (uint64, error) {
	lv := p.v.legacy
	v, err := p.migratedView(lv)
	if err != nil {
		return 0, err
	}
	s := p.s
	if err := s.missingPackedDirs(); err != nil {
		return 0, err
	}
	if err := s.prepare(ctx, fence); err != nil {
		return 0, err
	}
	garbage, err := p.strayGarbage(lv)
	if err != nil {
		return 0, err
	}
	p.v.garbage = garbage
	p.v.manVer = lv.manVer
	f := &flusher{p: p, ctx: ctx, fence: fence, runs: map[string]int{}}
	if err := p.deleteGarbage(f); err != nil {
		return 0, fmt.Errorf("persist: migrate: delete garbage: %w", err)
	}
	p.v = v
	v.root.walkLeaves(func(l *snode) {
		if err == nil {
			err = f.add(phaseMigrate, pop{rel: l.name(), value: l.raw})
		}
	})
	if err == nil {
		err = f.flush()
	}
	if err != nil {
		return 0, fmt.Errorf("persist: migrate: write shards: %w", err)
	}
	p.lg.Info("persist: migrating the store to the packed layout", zap.Int("format", p.format),
		zap.Int("shards", v.leaves()), zap.Int("records", len(v.recs)))
	return p.commitPacked(ctx, fence, ops, fwid)
}

// migratedView is the packed view of the state a format 1 view holds
// (with its interrupted journaled commit, if any, applied): every shard
// current at the format 1 generation, an empty log, parts under their
// format 1 names (renameParts renames them). It checks the state against
// the format 1 manifest first.
func (p *packer) migratedView(lv *view) (*pview, error) {
	state := make(map[recKey]recData, len(lv.data))
	for k, d := range lv.data {
		state[k] = d
	}
	for _, o := range lv.pending {
		switch {
		case o.del:
			delete(state, o.rec)
		case o.ref != nil:
			state[o.rec] = recData{ref: o.ref}
		default:
			state[o.rec] = recData{data: o.data}
		}
	}
	man := *lv.man
	v := &pview{man: &man, manVer: lv.manVer, recs: make(map[recKey]recInfo, len(state))}
	recs := make([]shardRec, 0, len(state))
	var sum tally
	for k, d := range state {
		info := recInfo{}
		if d.ref != nil {
			info = recInfo{hash: recordHashCRC(k, d.ref.dataCRC, d.ref.size), gen: d.ref.gen, parts: d.ref.parts}
		} else {
			info.hash = recordHash(k, d.data)
		}
		v.recs[k] = info
		sum.add(k, info.hash)
		recs = append(recs, shardRec{rec: k, hash: shardHash(k), data: d.data, ref: d.ref})
	}
	if sum.tasks != man.tasks || sum.entries != man.entries || sum.digest != man.digest {
		return nil, fmt.Errorf("persist: migrate: the state read no longer matches manifest %s (were loaded values modified?); reload",
			p.s.path(manifestName))
	}
	sortRecs(recs)
	man.applying, man.applyGen, man.applyChunks = false, 0, 0
	man.logFrom = man.generation
	man.layout = formatPacked
	v.root = partition(0, 0, recs, p.shardMax, man.generation)
	v.root.walkLeaves(func(l *snode) { v.shardBytes += len(l.raw) })
	v.legacyDirs = []string{journalDir, entriesDir, tasksDir}
	for k, ids := range lv.parts {
		info := v.recs[k]
		for _, id := range ids {
			if info.parts == 0 || id.gen != info.gen || id.n >= info.parts {
				v.legacyParts = append(v.legacyParts, p.s.eng.lay.part(k, id.gen, id.n))
			}
		}
	}
	sort.Strings(v.legacyParts)
	return v, nil
}

// renameBatch is how many parts renameParts reads at a time.
const renameBatch = 32

// renameParts moves the parts of a store of format 3 or older to their
// format 4 names, before the commit point of the first commit that writes
// format 4: every part of a live record is copied, byte for byte, to its
// hashed name (blobs/<bucket>/<hash>.<gen>.<n>), in multis that check the
// manifest's version. No reader looks there yet: the format 3 manifest
// names parts by their escaped key, and binaries of format 3 refuse the
// buckets as foreign keys (ErrForeign, nothing written) until the commit
// point; after it, they refuse the format 4 manifest (ErrNewerFormat).
// The old names become legacy, deleted a few multis per commit after the
// commit point. A crash before the commit point leaves the copies as
// garbage, deleted before the next commit copies again.
func (p *packer) renameParts(f *flusher) error {
	v, s := p.v, p.s
	if v.hashed || p.format < formatHashedParts {
		return nil
	}
	keys := make([]recKey, 0)
	for k, info := range v.recs {
		if info.parts > 0 {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].kind < keys[j].kind || (keys[i].kind == keys[j].kind && keys[i].key < keys[j].key)
	})
	type move struct {
		k        recKey
		id       partID
		from, to string
	}
	var moves []move
	oldName := layout{}.part
	for _, k := range keys {
		info, h := v.recs[k], partHash(k)
		for n := uint32(0); n < info.parts; n++ {
			moves = append(moves, move{k: k, id: partID{gen: info.gen, n: n},
				from: oldName(k, info.gen, n), to: hashedPartOf(h, info.gen, n)})
		}
	}
	for len(moves) > 0 {
		batch := moves[:min(renameBatch, len(moves))]
		moves = moves[len(batch):]
		rels := make([]string, len(batch))
		for i, m := range batch {
			rels[i] = m.from
		}
		vals, err := s.fetch(f.ctx, rels)
		if err != nil {
			return err
		}
		for i, m := range batch {
			if vals[i] == nil {
				return fmt.Errorf("part %s of the %s %q is missing: %w", s.path(m.from), m.k.kind, m.k.key, ErrCorrupt)
			}
			pt, err := decodePart(vals[i], formatRecords)
			if err != nil {
				return fmt.Errorf("part %s: %w", s.path(m.from), err)
			}
			if pt.kind != m.k.kind || pt.key != m.k.key || pt.gen != m.id.gen || pt.n != uint64(m.id.n) {
				return fmt.Errorf("part %s belongs to another record: %w", s.path(m.from), ErrCorrupt)
			}
			if err := f.add(phaseRename, pop{rel: m.to, value: vals[i]}); err != nil {
				return err
			}
			v.legacyParts = append(v.legacyParts, m.from)
		}
	}
	if err := f.flush(); err != nil {
		return err
	}
	sort.Strings(v.legacyParts)
	v.hashed = true
	if len(keys) > 0 {
		p.lg.Info("persist: copied the parts of large records to their format 4 names",
			zap.Int("records", len(keys)), zap.Int("parts", len(v.legacyParts)))
	}
	return nil
}

// strayGarbage lists what may go before the migration writes: format 1
// orphans and journal chunks without a mark, and the contents of shards/,
// log/ and blobs/'s buckets that an interrupted migration left.
func (p *packer) strayGarbage(lv *view) ([]string, error) {
	out := append([]string(nil), lv.orphans...)
	if !(lv.man != nil && lv.man.applying) {
		out = append(out, sortedKeys(lv.journal)...)
	}
	for _, dir := range lv.stray {
		names, _, err := p.s.conn.Children(p.s.path(dir))
		if err != nil && !errors.Is(err, zk.ErrNoNode) {
			return nil, fmt.Errorf("persist: migrate: list %s: %w", p.s.path(dir), err)
		}
		for _, n := range names {
			out = append(out, dir+"/"+n)
		}
	}
	return out, nil
}

// missingPackedDirs notes which format 2 directories the migration must
// create.
func (s *ZKStore) missingPackedDirs() error {
	s.missing = nil
	for _, d := range packedDirs {
		ok, _, err := s.conn.Exists(s.path(d))
		if err != nil {
			return fmt.Errorf("persist: migrate: exists %s: %w", s.path(d), err)
		}
		if !ok {
			s.missing = append(s.missing, d)
		}
	}
	return nil
}

// deleteLegacy deletes format 1 znodes a migration left, in at most
// maxLegacyMultis multis.
func (p *packer) deleteLegacy(f *flusher) error {
	v := p.v
	for n := 0; n < maxLegacyMultis && (len(v.legacyParts) > 0 || len(v.legacyDirs) > 0); n++ {
		pops, err := p.legacyBatch(f)
		if err != nil {
			return err
		}
		for _, pp := range pops {
			if err := f.add(phaseLegacy, pp); err != nil {
				return err
			}
		}
		if err := f.flush(); err != nil {
			return err
		}
		if len(v.legacyParts) == 0 && len(v.legacyDirs) == 0 {
			p.lg.Info("persist: deleted the format 1 znodes of the migrated store")
		}
	}
	return nil
}

// legacyBatch returns the deletes of one multi: parts, then the children
// of the format 1 directories (records before their bucket, buckets before
// their directory), listed as it goes.
func (p *packer) legacyBatch(f *flusher) ([]pop, error) {
	v, s := p.v, p.s
	g := &pgroup{}
	var pops []pop
	add := func(rel string) bool {
		pp := pop{rel: rel, del: true}
		if !f.fits(g, pp) {
			return false
		}
		g.pops = append(g.pops, pp)
		g.bytes += f.cost(pp)
		pops = append(pops, pp)
		return true
	}
	for len(v.legacyParts) > 0 && add(v.legacyParts[0]) {
		v.legacyParts = v.legacyParts[1:]
	}
	for len(v.legacyDirs) > 0 {
		dir := v.legacyDirs[0]
		kids, _, err := s.conn.Children(s.path(dir))
		if errors.Is(err, zk.ErrNoNode) {
			v.legacyDirs = v.legacyDirs[1:]
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("persist: list %s: %w", s.path(dir), err)
		}
		sort.Strings(kids)
		for _, kid := range kids {
			rel := dir + "/" + kid
			if dir != journalDir {
				recs, _, err := s.conn.Children(s.path(rel))
				if err != nil && !errors.Is(err, zk.ErrNoNode) {
					return nil, fmt.Errorf("persist: list %s: %w", s.path(rel), err)
				}
				for _, r := range recs {
					if !add(rel + "/" + r) {
						return pops, nil
					}
				}
			}
			if !add(rel) {
				return pops, nil
			}
		}
		if !add(dir) {
			return pops, nil
		}
		v.legacyDirs = v.legacyDirs[1:]
	}
	return pops, nil
}
