package persist

import (
	"context"
	"fmt"
	"sort"
)

// merger builds a format 2 snapshot: the shards' records, then the log
// entries in order, each op applied unless its record's shard is already
// current at the op's generation.
type merger struct {
	v    *pview
	snap *Snapshot
	refs map[recKey]*partsRef // live records stored in parts
}

func (m *merger) put(k recKey, data []byte, ref *partsRef) {
	if ref != nil {
		m.refs[k] = ref
		delete(snapMap(m.snap, k.kind), k.key)
		m.v.recs[k] = recInfo{hash: recordHashCRC(k, ref.dataCRC, ref.size), gen: ref.gen, parts: ref.parts}
		return
	}
	delete(m.refs, k)
	snapMap(m.snap, k.kind)[k.key] = data
	m.v.recs[k] = recInfo{hash: recordHash(k, data)}
}

func (m *merger) del(k recKey) {
	delete(m.refs, k)
	delete(snapMap(m.snap, k.kind), k.key)
	delete(m.v.recs, k)
}

// shard decodes the value of leaf and adds its records.
func (m *merger) shard(s *ZKStore, leaf *snode, val []byte) error {
	where := s.path(leaf.name())
	sv, err := decodeShard(val)
	if err != nil {
		return fmt.Errorf("persist: load: shard %s: %w", where, err)
	}
	if sv.depth != leaf.depth || sv.prefix != leaf.prefix {
		return fmt.Errorf("persist: load: %s holds shard %d.%x: %w", where, sv.depth, sv.prefix, ErrCorrupt)
	}
	if sv.gen > m.v.man.generation {
		return fmt.Errorf("persist: load: shard %s is of generation %d, after the manifest's %d: %w",
			where, sv.gen, m.v.man.generation, ErrCorrupt)
	}
	leaf.exists, leaf.gen, leaf.raw = true, sv.gen, val
	m.v.shardBytes += len(val)
	for i := range sv.recs {
		r := &sv.recs[i]
		if _, dup := m.v.recs[r.rec]; dup {
			return fmt.Errorf("persist: load: shard %s holds the %s %q twice: %w", where, r.rec.kind, r.rec.key, ErrCorrupt)
		}
		m.put(r.rec, r.data, r.ref)
	}
	return nil
}

// logEntry checks and applies the log entry of generation gen, whose
// listed chunks are chunks (by index, nil where missing).
func (m *merger) logEntry(s *ZKStore, gen uint64, chunks []*listedLog, vals map[string][]byte) error {
	name := func(n int) string { return s.path(logName(gen, uint32(n))) }
	if chunks[0] == nil {
		return fmt.Errorf("persist: load: log chunk %s is missing: %w", name(0), ErrCorrupt)
	}
	decode := func(n int) (*journalChunk, error) {
		c, err := decodeLogChunk(vals[chunks[n].rel])
		if err != nil {
			return nil, fmt.Errorf("persist: load: log chunk %s: %w", name(n), err)
		}
		if c.gen != gen || c.n != uint64(n) {
			return nil, fmt.Errorf("persist: load: log chunk %s is chunk %d of generation %d: %w", name(n), c.n, c.gen, ErrCorrupt)
		}
		return c, nil
	}
	c0, err := decode(0)
	if err != nil {
		return err
	}
	for n := 1; uint64(n) < c0.total; n++ {
		if n >= len(chunks) || chunks[n] == nil {
			return fmt.Errorf("persist: load: log chunk %s is missing: %w", name(n), ErrCorrupt)
		}
	}
	if uint64(len(chunks)) > c0.total {
		return fmt.Errorf("persist: load: log chunk %s is beyond its entry's %d chunks: %w", name(len(chunks)-1), c0.total, ErrCorrupt)
	}
	decoded := make([]*journalChunk, c0.total)
	decoded[0] = c0
	bytes := len(vals[chunks[0].rel])
	for n := 1; n < len(decoded); n++ {
		c, err := decode(n)
		if err != nil {
			return err
		}
		if c.total != c0.total {
			return fmt.Errorf("persist: load: log chunk %s says its entry has %d chunks, chunk 0 says %d: %w", name(n), c.total, c0.total, ErrCorrupt)
		}
		decoded[n] = c
		bytes += len(vals[chunks[n].rel])
	}
	ops, _, err := opsFromChunks(decoded, func(i int) string { return "log chunk " + name(i) })
	if err != nil {
		return err
	}
	for _, o := range ops {
		leaf := m.v.root.find(shardHash(o.rec))
		if gen <= leaf.gen {
			continue // the shard has it
		}
		if o.del {
			m.del(o.rec)
		} else {
			m.put(o.rec, o.data, o.ref)
		}
		leaf.addPend(o.rec, pendOp{gen: gen, del: o.del, data: o.data, ref: o.ref})
	}
	m.v.log = append(m.v.log, logEntry{gen: gen, chunks: len(decoded), bytes: bytes})
	m.v.logBytes += bytes
	return nil
}

// finish assembles the records stored in parts and checks the counts and
// digest against the manifest.
func (m *merger) finish(ctx context.Context, p *packer, raw *rawRead, name partNamer) error {
	keys := make([]recKey, 0, len(m.refs))
	for k := range m.refs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].kind < keys[j].kind || (keys[i].kind == keys[j].kind && keys[i].key < keys[j].key)
	})
	for _, k := range keys {
		data, err := p.s.eng.assemble(ctx, raw, k, fmt.Sprintf("the %s %q", k.kind, k.key), m.refs[k], name)
		if err != nil {
			return err
		}
		snapMap(m.snap, k.kind)[k.key] = data
	}
	var sum tally
	for k, info := range m.v.recs {
		sum.add(k, info.hash)
	}
	man, where := m.v.man, p.s.path(manifestName)
	if sum.tasks != man.tasks || sum.entries != man.entries {
		return fmt.Errorf("persist: load: manifest %s counts %d tasks and %d entries, the store holds %d and %d: %w",
			where, man.tasks, man.entries, sum.tasks, sum.entries, ErrCorrupt)
	}
	if sum.digest != man.digest {
		return fmt.Errorf("persist: load: manifest %s: records do not match its digest (a record was replaced or lost): %w",
			where, ErrCorrupt)
	}
	return nil
}
