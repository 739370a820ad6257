package persist

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Format 2 (ZooKeeper) packs records into shards: the leaves of a binary
// trie over a 64-bit hash of each record's kind and key. A leaf at depth d
// holds every record whose hash starts with its d-bit prefix, in one znode
// shards/<d>.<prefix in hex>. A leaf that would outgrow the shard size is
// split (by the next hash bit), two small siblings are merged; the
// manifest carries the trie's shape, so Load knows which znodes must exist.

// maxShardDepth bounds the trie; a leaf this deep is never split (two
// records would need the same 40-bit hash prefix to get there).
const maxShardDepth = 40

// shardHash places a record in the trie: FNV-64a over its kind and key,
// finished with MurmurHash3's 64-bit mixer so that the top bits, which
// choose the shard, depend on every byte. Part of format 2: never change it.
func shardHash(k recKey) uint64 {
	const offset64, prime64 = 14695981039346656037, 1099511628211
	x := uint64(offset64)
	x = (x ^ uint64(k.kind)) * prime64
	for i := 0; i < len(k.key); i++ {
		x = (x ^ uint64(k.key[i])) * prime64
	}
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// hashBit returns bit depth of h, counting from the top.
func hashBit(h uint64, depth int) int { return int(h>>(63-depth)) & 1 }

// hashPrefix returns the top depth bits of h.
func hashPrefix(h uint64, depth int) uint64 {
	if depth == 0 {
		return 0
	}
	return h >> (64 - depth)
}

// pendOp is a change to a shard's records that the shard's znode does not
// hold yet: it is in the log entry of generation gen.
type pendOp struct {
	gen  uint64
	del  bool
	data []byte
	ref  *partsRef
}

// snode is a node of the shard trie: an inner node with two children, or
// a leaf, which is one shard znode.
type snode struct {
	depth  int
	prefix uint64
	parent *snode
	kids   [2]*snode // both nil for a leaf

	// Leaf state.
	exists bool   // its znode exists
	gen    uint64 // the generation its znode is current at
	raw    []byte // its znode's value (nil when it does not exist)
	pend   map[recKey]pendOp
	oldest uint64 // lowest generation in pend; 0 when pend is empty
}

func (n *snode) leaf() bool { return n.kids[0] == nil }

// name returns the leaf's znode path relative to the framework's root.
func (n *snode) name() string { return shardName(n.depth, n.prefix) }

func shardName(depth int, prefix uint64) string {
	return shardsDir + "/" + strconv.Itoa(depth) + "." + strconv.FormatUint(prefix, 16)
}

// parseShardName parses "<depth>.<prefix>" in canonical form.
func parseShardName(name string) (int, uint64, bool) {
	a, b, ok := strings.Cut(name, ".")
	if !ok {
		return 0, 0, false
	}
	d, ok := parseCanonical(a, 8)
	if !ok || d > maxShardDepth {
		return 0, 0, false
	}
	p, err := strconv.ParseUint(b, 16, 64)
	if err != nil || strconv.FormatUint(p, 16) != b || (d < 64 && p>>d != 0) {
		return 0, 0, false
	}
	return int(d), p, true
}

// find returns the leaf that holds hash h.
func (n *snode) find(h uint64) *snode {
	for !n.leaf() {
		n = n.kids[hashBit(h, n.depth)]
	}
	return n
}

// walkLeaves calls fn for every leaf below n, in hash order.
func (n *snode) walkLeaves(fn func(*snode)) {
	if n.leaf() {
		fn(n)
		return
	}
	n.kids[0].walkLeaves(fn)
	n.kids[1].walkLeaves(fn)
}

// sibling returns the other child of n's parent, or nil at the root.
func (n *snode) sibling() *snode {
	if n.parent == nil {
		return nil
	}
	if n.parent.kids[0] == n {
		return n.parent.kids[1]
	}
	return n.parent.kids[0]
}

// addPend records a change of generation gen to leaf n.
func (n *snode) addPend(k recKey, op pendOp) {
	if n.pend == nil {
		n.pend = map[recKey]pendOp{}
	}
	if n.oldest == 0 {
		n.oldest = op.gen
	}
	n.pend[k] = op
}

// shapeCode is the trie's shape as the manifest stores it: its nodes in
// preorder, one bit each (1: inner node, 0: leaf).
type shapeCode struct {
	nodes int
	bits  string
}

func encodeShape(root *snode) shapeCode {
	var bits []byte
	n := 0
	var walk func(*snode)
	walk = func(x *snode) {
		if n%8 == 0 {
			bits = append(bits, 0)
		}
		if !x.leaf() {
			bits[n/8] |= 1 << (n % 8)
		}
		n++
		if !x.leaf() {
			walk(x.kids[0])
			walk(x.kids[1])
		}
	}
	walk(root)
	return shapeCode{nodes: n, bits: string(bits)}
}

// decodeShape builds the trie a shape describes (leaves without content).
func decodeShape(c shapeCode) (*snode, error) {
	i := 0
	var build func(depth int, prefix uint64, parent *snode) (*snode, error)
	build = func(depth int, prefix uint64, parent *snode) (*snode, error) {
		if i >= c.nodes {
			return nil, fmt.Errorf("shard trie ends early: %w", ErrCorrupt)
		}
		inner := c.bits[i/8]&(1<<(i%8)) != 0
		i++
		n := &snode{depth: depth, prefix: prefix, parent: parent}
		if !inner {
			return n, nil
		}
		if depth >= maxShardDepth {
			return nil, fmt.Errorf("shard trie deeper than %d: %w", maxShardDepth, ErrCorrupt)
		}
		for b := 0; b < 2; b++ {
			kid, err := build(depth+1, prefix<<1|uint64(b), n)
			if err != nil {
				return nil, err
			}
			n.kids[b] = kid
		}
		return n, nil
	}
	root, err := build(0, 0, nil)
	if err != nil {
		return nil, err
	}
	if i != c.nodes {
		return nil, fmt.Errorf("shard trie has %d nodes after its last leaf: %w", c.nodes-i, ErrCorrupt)
	}
	for ; i < 8*len(c.bits); i++ {
		if c.bits[i/8]&(1<<(i%8)) != 0 {
			return nil, fmt.Errorf("shard trie has stray bits: %w", ErrCorrupt)
		}
	}
	return root, nil
}

// shardRec is one record of a shard: inline data or a parts reference.
type shardRec struct {
	rec  recKey
	hash uint64
	data []byte
	ref  *partsRef
}

// shardRecSize bounds the bytes a record adds to a shard value.
func shardRecSize(k recKey, data []byte, ref *partsRef) int {
	n := 2 + 2*4 + len(k.key)
	if ref != nil {
		return n + 4 + 3*10
	}
	return n + len(data)
}

// shardHead bounds a shard value's bytes besides its records.
const shardHead = headerSize + 4*10

// Shard value payload (format 2, typeShard): depth, prefix, generation,
// record count, then per record its kind, key, form, and either its data
// (formInline) or its parts reference (formParts).
func encodeShard(depth int, prefix, gen uint64, recs []shardRec) []byte {
	size := shardHead
	for i := range recs {
		size += shardRecSize(recs[i].rec, recs[i].data, recs[i].ref)
	}
	w := newWriter(size)
	w.uvarint(uint64(depth))
	w.uvarint(prefix)
	w.uvarint(gen)
	w.uvarint(uint64(len(recs)))
	for i := range recs {
		r := &recs[i]
		w.byte(byte(r.rec.kind))
		w.str(r.rec.key)
		if r.ref != nil {
			w.byte(formParts)
			w.b = writeRef(w.b, r.ref)
			continue
		}
		w.byte(formInline)
		w.uvarint(uint64(len(r.data)))
		w.raw(r.data)
	}
	return w.sealAs(typeShard, formatPacked)
}

// shardVal is a decoded shard value.
type shardVal struct {
	depth  int
	prefix uint64
	gen    uint64
	recs   []shardRec
}

// decodeShard decodes a shard value and checks that every record belongs
// to the shard's hash prefix and occurs once. Inline data aliases v.
func decodeShard(v []byte) (*shardVal, error) {
	p, version, err := openValue(v, typeShard, maxFormat)
	if err != nil {
		return nil, err
	}
	if version != formatPacked {
		return nil, fmt.Errorf("a shard of format %d: %w", version, ErrCorrupt)
	}
	r := &reader{b: p}
	sv := &shardVal{}
	depth := r.uvarint("shard depth")
	sv.prefix = r.uvarint("shard prefix")
	sv.gen = r.uvarint("shard generation")
	n := r.uvarint("record count")
	if r.err == nil && (depth > maxShardDepth || sv.prefix>>depth != 0 || n > uint64(len(r.b))/3) {
		r.err = fmt.Errorf("shard %d.%x with %d records in %d bytes: %w", depth, sv.prefix, n, len(r.b), ErrCorrupt)
	}
	if r.err != nil {
		return nil, r.err
	}
	sv.depth = int(depth)
	sv.recs = make([]shardRec, 0, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		var sr shardRec
		sr.rec.kind = recKind(r.byte("record kind"))
		sr.rec.key = string(r.bytes("record key"))
		switch form := r.byte("record form"); {
		case r.err != nil:
		case form == formInline:
			sr.data = r.bytes("record data")
		case form == formParts:
			ref := readRef(r)
			sr.ref = &ref
		default:
			r.err = fmt.Errorf("unknown record form %d: %w", form, ErrCorrupt)
		}
		if r.err != nil {
			break
		}
		if !sr.rec.kind.valid() {
			return nil, fmt.Errorf("unknown record kind %d: %w", sr.rec.kind, ErrCorrupt)
		}
		sr.hash = shardHash(sr.rec)
		if hashPrefix(sr.hash, sv.depth) != sv.prefix {
			return nil, fmt.Errorf("holds the %s %q, which belongs to another shard: %w", sr.rec.kind, sr.rec.key, ErrCorrupt)
		}
		sv.recs = append(sv.recs, sr)
	}
	r.done("shard")
	if r.err != nil {
		return nil, r.err
	}
	return sv, nil
}

// partition builds the subtree at (depth, prefix) that holds recs (sorted
// by hash): one leaf if they fit max bytes (or cannot be split further),
// else two subtrees split by the next hash bit. Leaves get their values,
// current at generation gen.
func partition(depth int, prefix uint64, recs []shardRec, max int, gen uint64) *snode {
	size := shardHead
	for i := range recs {
		size += shardRecSize(recs[i].rec, recs[i].data, recs[i].ref)
	}
	n := &snode{depth: depth, prefix: prefix}
	if size <= max || len(recs) < 2 || depth >= maxShardDepth {
		n.exists, n.gen = true, gen
		n.raw = encodeShard(depth, prefix, gen, recs)
		return n
	}
	cut, _ := slices.BinarySearchFunc(recs, 1, func(r shardRec, bit int) int { return hashBit(r.hash, depth) - bit })
	for b, part := range [2][]shardRec{recs[:cut], recs[cut:]} {
		kid := partition(depth+1, prefix<<1|uint64(b), part, max, gen)
		kid.parent = n
		n.kids[b] = kid
	}
	return n
}

// sortRecs orders records by hash (then kind and key, for determinism).
func sortRecs(recs []shardRec) {
	slices.SortFunc(recs, func(a, b shardRec) int {
		switch {
		case a.hash != b.hash:
			if a.hash < b.hash {
				return -1
			}
			return 1
		case a.rec.kind != b.rec.kind:
			return int(a.rec.kind) - int(b.rec.kind)
		}
		return strings.Compare(a.rec.key, b.rec.key)
	})
}
