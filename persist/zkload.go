package persist

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/go-zookeeper/zk"
)

// packedList is what the format 2 directories hold, by name.
type packedList struct {
	shards []listedShard
	logs   []listedLog
	parts  []rawPart // named as in formats 1 to 3: blobs/<t|e>.<key>.<gen>.<n>
	// hparts are parts named as in format 4, in the buckets listed.
	hparts  []listedHashedPart
	buckets []string // blobs/<bucket>
	legacy  []string // format 1 directories (tasks, entries, journal)
	foreign []string
}

type listedHashedPart struct {
	rel string
	hashedPartInfo
}

type listedShard struct {
	rel    string
	depth  int
	prefix uint64
}

type listedLog struct {
	rel string
	gen uint64
	n   uint32
}

// readManifest syncs with the ZooKeeper leader and reads the manifest.
func (s *ZKStore) readManifest() (*rawRead, error) {
	if _, err := s.conn.Sync(s.root); err != nil && !errors.Is(err, zk.ErrNoNode) {
		return nil, fmt.Errorf("persist: load: sync %s: %w", s.root, err)
	}
	raw := &rawRead{manVer: -1, fetch: s.fetch}
	data, st, err := s.conn.Get(s.path(manifestName))
	switch {
	case err == nil:
		raw.hasMan, raw.manifest, raw.manVer, raw.zkManZxid = true, data, int64(st.Version), st.Mzxid
	case !errors.Is(err, zk.ErrNoNode):
		return nil, fmt.Errorf("persist: load: read %s: %w", s.path(manifestName), err)
	}
	return raw, nil
}

// packedDirs are the directories of a format 2 store.
var packedDirs = []string{shardsDir, logDir, blobsDir}

// listPacked lists the root and the format 2 directories (nil when the
// root does not exist), and notes missing directories in s.missing. With
// buckets (a binary of format 4), it also lists the buckets of blobs/;
// without, it takes them for foreign keys, as binaries before format 4 do.
func (s *ZKStore) listPacked(ctx context.Context, raw *rawRead, buckets bool) (*packedList, error) {
	s.missing, s.buckets = nil, map[string]bool{}
	top, _, err := s.conn.Children(s.root)
	if errors.Is(err, zk.ErrNoNode) {
		if raw.hasMan {
			return nil, fmt.Errorf("%s: %w", s.root, errVanished)
		}
		if err := s.findMissingAncestors(); err != nil {
			return nil, err
		}
		s.missing = append(s.missing, packedDirs...)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("persist: load: list %s: %w", s.root, err)
	}
	ls := &packedList{}
	present := map[string]bool{}
	for _, name := range top {
		switch name {
		case manifestName, leaderDir:
		case shardsDir, logDir, blobsDir:
			present[name] = true
		case tasksDir, entriesDir, journalDir:
			ls.legacy = append(ls.legacy, name)
		default:
			ls.foreign = append(ls.foreign, name)
		}
	}
	sort.Strings(ls.legacy)
	var dirs []string
	for _, d := range packedDirs {
		if present[d] {
			dirs = append(dirs, d)
		} else {
			s.missing = append(s.missing, d)
		}
	}
	lists, err := s.parallel(ctx, dirs, func(p string) ([]byte, []string, error) {
		names, _, err := s.conn.Children(p)
		return nil, names, err
	})
	if err != nil {
		return nil, err
	}
	for i, dir := range dirs {
		if lists[i].err != nil {
			return nil, s.listErr(dir, lists[i].err)
		}
		for _, name := range lists[i].names {
			ls.add(dir, name, buckets)
		}
	}
	if len(ls.buckets) == 0 {
		return ls, nil
	}
	sort.Strings(ls.buckets)
	lists, err = s.parallel(ctx, ls.buckets, func(p string) ([]byte, []string, error) {
		names, _, err := s.conn.Children(p)
		return nil, names, err
	})
	if err != nil {
		return nil, err
	}
	for i, dir := range ls.buckets {
		if lists[i].err != nil {
			return nil, s.listErr(dir, lists[i].err)
		}
		s.buckets[dir] = true
		bucket := dir[len(blobsDir)+1:]
		for _, name := range lists[i].names {
			if hp, ok := parseHashedPart(bucket, name); ok {
				ls.hparts = append(ls.hparts, listedHashedPart{rel: dir + "/" + name, hashedPartInfo: hp})
			} else {
				ls.foreign = append(ls.foreign, dir+"/"+name)
			}
		}
	}
	return ls, nil
}

// add classifies one child of a format 2 directory.
func (ls *packedList) add(dir, name string, buckets bool) {
	rel := dir + "/" + name
	switch dir {
	case shardsDir:
		if d, p, ok := parseShardName(name); ok {
			ls.shards = append(ls.shards, listedShard{rel: rel, depth: d, prefix: p})
			return
		}
	case logDir:
		if gen, n, ok := parseGenN(name); ok {
			ls.logs = append(ls.logs, listedLog{rel: rel, gen: gen, n: n})
			return
		}
	case blobsDir:
		if pi := parsePart(name); pi.class == classPart {
			ls.parts = append(ls.parts, rawPart{rel: rel, rec: pi.rec, id: partID{gen: pi.gen, n: pi.n}})
			return
		}
		if buckets && validBucket(name) {
			ls.buckets = append(ls.buckets, rel)
			return
		}
	}
	ls.foreign = append(ls.foreign, rel)
}

// build reads the shards and log entries man names, and verifies and
// merges them into a snapshot and a view.
func (p *packer) build(ctx context.Context, raw *rawRead, man *manifest, format int, ls *packedList) (*Snapshot, *pview, error) {
	s := p.s
	root, err := decodeShape(man.shape)
	if err != nil {
		return nil, nil, fmt.Errorf("persist: load: manifest %s: %w", s.path(manifestName), err)
	}
	v := &pview{man: man, manVer: raw.manVer, root: root, hashed: format >= formatHashedParts,
		recs: make(map[recKey]recInfo, man.tasks+man.entries), legacyDirs: ls.legacy}
	leaves, rels, err := p.neededShards(v, ls)
	if err != nil {
		return nil, nil, err
	}
	entries := p.neededLog(v, ls)
	for _, e := range entries {
		for _, c := range e {
			if c != nil {
				rels = append(rels, c.rel)
			}
		}
	}
	vals, err := s.fetch(ctx, rels)
	if err != nil {
		return nil, nil, err
	}
	for i, val := range vals {
		if val == nil {
			return nil, nil, fmt.Errorf("%s: %w", s.path(rels[i]), errVanished)
		}
	}
	logVals := make(map[string][]byte, len(rels)-len(leaves))
	for i := len(leaves); i < len(rels); i++ {
		logVals[rels[i]] = vals[i]
	}
	m := &merger{v: v, snap: &Snapshot{
		Tasks: make(map[string][]byte, man.tasks), Entries: make(map[string][]byte, man.entries),
		Generation: man.generation, FrameworkID: man.frameworkID, Format: format, Writer: man.writer,
	}, refs: map[recKey]*partsRef{}}
	for i, leaf := range leaves {
		if err := m.shard(s, leaf, vals[i]); err != nil {
			return nil, nil, err
		}
	}
	for i, chunks := range entries {
		if err := m.logEntry(s, man.logFrom+1+uint64(i), chunks, logVals); err != nil {
			return nil, nil, err
		}
	}
	if err := m.finish(ctx, p, raw, v.partNamer()); err != nil {
		return nil, nil, err
	}
	p.orphans(v, ls)
	return m.snap, v, nil
}

// neededShards matches the trie's leaves with the listed shard znodes: a
// leaf without its znode is corruption, a znode without its leaf garbage
// (an interrupted split). It returns the leaves and their paths.
func (p *packer) neededShards(v *pview, ls *packedList) ([]*snode, []string, error) {
	listed := make(map[string]bool, len(ls.shards))
	for _, sh := range ls.shards {
		listed[sh.rel] = true
	}
	var leaves []*snode
	var rels []string
	var missing string
	v.root.walkLeaves(func(l *snode) {
		rel := l.name()
		if !listed[rel] && missing == "" {
			missing = rel
		}
		delete(listed, rel)
		leaves = append(leaves, l)
		rels = append(rels, rel)
	})
	if missing != "" {
		return nil, nil, fmt.Errorf("persist: load: shard %s is missing: %w", p.s.path(missing), ErrCorrupt)
	}
	for _, sh := range ls.shards {
		if listed[sh.rel] {
			v.garbage = append(v.garbage, sh.rel)
		}
	}
	return leaves, rels, nil
}

// neededLog returns, for every generation in (logFrom, generation], its
// listed chunks by index (nil where one is not listed), and notes other
// chunks as garbage: entries already folded into the shards, or written by
// a writer that died before its commit point.
func (p *packer) neededLog(v *pview, ls *packedList) [][]*listedLog {
	man := v.man
	out := make([][]*listedLog, man.generation-man.logFrom)
	for i := range ls.logs {
		c := &ls.logs[i]
		if c.gen <= man.logFrom || c.gen > man.generation {
			v.garbage = append(v.garbage, c.rel)
			continue
		}
		e := &out[c.gen-man.logFrom-1]
		for len(*e) <= int(c.n) {
			*e = append(*e, nil)
		}
		(*e)[c.n] = c
	}
	for i := range out {
		if len(out[i]) == 0 {
			out[i] = []*listedLog{nil}
		}
	}
	return out
}

// orphans notes parts that no live record references as garbage. In a
// format 4 store, parts under format 3 names are what its migration left:
// legacy, deleted a few multis per commit; in an older store, parts under
// format 4 names are what an interrupted migration wrote: garbage.
func (p *packer) orphans(v *pview, ls *packedList) {
	live := func(k recKey, id partID) bool {
		info, ok := v.recs[k]
		return ok && info.parts > 0 && id.gen == info.gen && id.n < info.parts
	}
	if !v.hashed {
		for _, pt := range ls.parts {
			if !live(pt.rec, pt.id) {
				v.garbage = append(v.garbage, pt.rel)
			}
		}
		for _, hp := range ls.hparts {
			v.garbage = append(v.garbage, hp.rel)
		}
		sort.Strings(v.garbage)
		return
	}
	var byHash map[[partHashLen]byte]recKey
	if len(ls.hparts) > 0 {
		byHash = map[[partHashLen]byte]recKey{}
		for k, info := range v.recs {
			if info.parts > 0 {
				byHash[partHash(k)] = k
			}
		}
	}
	for _, hp := range ls.hparts {
		if k, ok := byHash[hp.hash]; !ok || !live(k, hp.id) {
			v.garbage = append(v.garbage, hp.rel)
		}
	}
	for _, pt := range ls.parts {
		v.legacyParts = append(v.legacyParts, pt.rel)
	}
	sort.Strings(v.garbage)
	sort.Strings(v.legacyParts)
}
