package persist

import (
	"errors"
	"fmt"
	"testing"
)

// TestShardHashStable pins the hash that places records in shards: it is
// part of format 2, and a change would make every stored shard wrong.
func TestShardHashStable(t *testing.T) {
	golden := map[recKey]uint64{
		{kindTask, ""}:            0xce03a4a8854cb33b,
		{kindTask, "task-000001"}: 0xf40aa1fdfc81b92c,
		{kindEntry, "cfg"}:        0x648a3add9a14132a,
	}
	for k, want := range golden {
		if got := shardHash(k); got != want {
			t.Errorf("shardHash(%c %q) = %#x, want %#x", k.kind, k.key, got, want)
		}
	}
	// Keys that differ in their last byte spread over the top bits.
	var top [16]int
	for i := 0; i < 1600; i++ {
		top[shardHash(recKey{kindTask, fmt.Sprintf("task-%06d", i)})>>60]++
	}
	for b, n := range top {
		if n < 60 || n > 140 {
			t.Errorf("top nibble %x holds %d of 1600 sequential keys", b, n)
		}
	}
}

func TestShardNames(t *testing.T) {
	for _, tc := range []struct {
		depth  int
		prefix uint64
		name   string
	}{
		{0, 0, "shards/0.0"},
		{1, 1, "shards/1.1"},
		{12, 0xa3f, "shards/12.a3f"},
		{40, 1<<40 - 1, "shards/40.ffffffffff"},
	} {
		if got := shardName(tc.depth, tc.prefix); got != tc.name {
			t.Errorf("shardName(%d, %x) = %q, want %q", tc.depth, tc.prefix, got, tc.name)
		}
		d, p, ok := parseShardName(tc.name[len(shardsDir)+1:])
		if !ok || d != tc.depth || p != tc.prefix {
			t.Errorf("parseShardName(%q) = %d, %x, %v", tc.name, d, p, ok)
		}
	}
	for _, bad := range []string{"", "0", "0.", ".0", "00.0", "1.2", "0.1", "2.03", "2.A", "41.0", "-1.0", "1.1.1"} {
		if d, p, ok := parseShardName(bad); ok {
			t.Errorf("parseShardName(%q) accepted: %d, %x", bad, d, p)
		}
	}
}

func TestShapeRoundTrip(t *testing.T) {
	leaf := func() *snode { return &snode{} }
	inner := func(a, b *snode) *snode { return &snode{kids: [2]*snode{a, b}} }
	for _, root := range []*snode{
		leaf(),
		inner(leaf(), leaf()),
		inner(inner(leaf(), inner(leaf(), leaf())), leaf()),
	} {
		fix(root, 0, 0, nil)
		c := encodeShape(root)
		got, err := decodeShape(c)
		if err != nil {
			t.Fatalf("decodeShape: %v", err)
		}
		if a, b := leafNames(root), leafNames(got); a != b {
			t.Errorf("shape round trip: %s, want %s", b, a)
		}
	}
	for _, c := range []shapeCode{
		{nodes: 2, bits: "\x00"}, // a leaf, then a stray node
		{nodes: 1, bits: "\x01"}, // an inner node without children
		{nodes: 1, bits: "\x02"}, // a stray bit after the last node
	} {
		if _, err := decodeShape(c); !errors.Is(err, ErrCorrupt) {
			t.Errorf("decodeShape(%+v): %v, want ErrCorrupt", c, err)
		}
	}
	// A trie deeper than maxShardDepth.
	bits := make([]byte, (maxShardDepth+2)*2/8+1)
	n := 0
	for d := 0; d <= maxShardDepth; d++ {
		bits[n/8] |= 1 << (n % 8) // inner; its right child a leaf comes after the left subtree
		n++
	}
	n += maxShardDepth + 2
	if _, err := decodeShape(shapeCode{nodes: n, bits: string(bits[:(n+7)/8])}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a trie deeper than %d decoded: %v", maxShardDepth, err)
	}
}

// fix sets depth, prefix and parent of a hand-built trie.
func fix(n *snode, depth int, prefix uint64, parent *snode) {
	n.depth, n.prefix, n.parent = depth, prefix, parent
	if !n.leaf() {
		fix(n.kids[0], depth+1, prefix<<1, n)
		fix(n.kids[1], depth+1, prefix<<1|1, n)
	}
}

func leafNames(root *snode) string {
	out := ""
	root.walkLeaves(func(l *snode) { out += l.name() + " " })
	return out
}

func TestShardRoundTrip(t *testing.T) {
	recs := []shardRec{
		{rec: recKey{kindTask, "a"}, data: []byte("A")},
		{rec: recKey{kindEntry, "big"}, ref: &partsRef{size: 1 << 20, dataCRC: 7, gen: 3, parts: 9}},
		{rec: recKey{kindTask, "empty"}, data: []byte{}},
	}
	for i := range recs {
		recs[i].hash = shardHash(recs[i].rec)
	}
	sortRecs(recs)
	v := encodeShard(0, 0, 12, recs)
	sv, err := decodeShard(v)
	if err != nil || sv.depth != 0 || sv.prefix != 0 || sv.gen != 12 || len(sv.recs) != len(recs) {
		t.Fatalf("decodeShard: %+v, %v", sv, err)
	}
	for i, r := range sv.recs {
		w := recs[i]
		if r.rec != w.rec || string(r.data) != string(w.data) || (r.ref == nil) != (w.ref == nil) || (r.ref != nil && *r.ref != *w.ref) {
			t.Errorf("record %d: %+v, want %+v", i, r, w)
		}
	}
	// A record outside the shard's prefix is corruption.
	k := recKey{kindTask, "a"}
	bit := hashBit(shardHash(k), 0)
	if _, err := decodeShard(encodeShard(1, uint64(1-bit), 1, []shardRec{{rec: k, data: nil}})); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a shard holding another shard's record decoded: %v", err)
	}
}

func TestPartition(t *testing.T) {
	var recs []shardRec
	for i := 0; i < 2000; i++ {
		k := recKey{kindTask, fmt.Sprintf("task-%05d", i)}
		recs = append(recs, shardRec{rec: k, hash: shardHash(k), data: value(k.key, 100)})
	}
	sortRecs(recs)
	const max = 16 << 10
	root := partition(0, 0, recs, max, 7)
	n, total := 0, 0
	root.walkLeaves(func(l *snode) {
		n++
		if len(l.raw) > max {
			t.Errorf("leaf %s has %d bytes, more than %d", l.name(), len(l.raw), max)
		}
		sv, err := decodeShard(l.raw)
		if err != nil || sv.gen != 7 || sv.depth != l.depth || sv.prefix != l.prefix {
			t.Fatalf("leaf %s: %+v, %v", l.name(), sv, err)
		}
		total += len(sv.recs)
		if l != root && l.parent.kids[hashBit(l.prefix<<(64-l.depth), l.parent.depth)] != l {
			t.Errorf("leaf %s is not where its prefix says", l.name())
		}
	})
	if total != len(recs) || n < 2000*110/max {
		t.Errorf("%d leaves hold %d records, want %d records in at least %d leaves", n, total, len(recs), 2000*110/max)
	}
	for _, r := range recs[:50] {
		if l := root.find(r.hash); hashPrefix(r.hash, l.depth) != l.prefix {
			t.Errorf("find(%x) = %s", r.hash, l.name())
		}
	}
}
