package persist

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"runtime/metrics"
	"strings"
	"testing"
)

func TestManifestRoundTrip(t *testing.T) {
	// Formats 1 and 3 with etcd's records layout; 2 and 3 with the packed
	// one. Format 3 also carries the writer's fence.
	split := &snode{kids: [2]*snode{{depth: 1}, {depth: 1, prefix: 1}}}
	writer := Fence{Key: "/regent/fw/leader/694d8f5a3c1e2b07", Revision: 1 << 33}
	cases := []struct {
		m       manifest
		version int
	}{
		{manifest{framework: "fw", generation: 1}, formatRecords},
		{manifest{framework: "fw", generation: 1 << 40, frameworkID: "2024-id-0001", tasks: 100000, entries: 3, digest: 0xdeadbeefcafef00d}, formatRecords},
		{manifest{framework: "ü", generation: 7, tasks: 1, applying: true, applyGen: 7, applyChunks: 12}, formatRecords},
		{manifest{framework: "fw", generation: 1, shape: encodeShape(&snode{})}, formatPacked},
		{manifest{framework: "fw", generation: 9, frameworkID: "id", tasks: 100000, entries: 2, digest: 42, logFrom: 7, shape: encodeShape(split)}, formatPacked},
		{manifest{framework: "fw", generation: 7, tasks: 1, applying: true, applyGen: 7, applyChunks: 12, writer: writer}, formatWriter},
		{manifest{framework: "fw", generation: 2, frameworkID: "id", writer: Fence{Key: "/z/leader/n_0000000003", Revision: -1}}, formatWriter},
		{manifest{framework: "fw", generation: 9, logFrom: 7, shape: encodeShape(split), layout: formatPacked, writer: writer}, formatWriter},
		{manifest{framework: "fw", generation: 9, logFrom: 7, shape: encodeShape(split), layout: formatPacked, writer: writer}, formatHashedParts},
	}
	for _, tc := range cases {
		m := tc.m
		if m.layout == 0 {
			m.layout = formatRecords
			if tc.version == formatPacked {
				m.layout = formatPacked
			}
		}
		v := encodeManifest(&m, tc.version)
		got, version, err := decodeManifest(v, maxFormat)
		if err != nil || version != tc.version || *got != m {
			t.Errorf("manifest %+v (format %d): decoded %+v, version %d, %v", m, tc.version, got, version, err)
		}
		if tc.version > formatRecords {
			if _, _, err := decodeManifest(v, tc.version-1); !errors.Is(err, ErrNewerFormat) {
				t.Errorf("a format %d reader decoded a format %d manifest: %v", tc.version-1, tc.version, err)
			}
		}
	}
	bads := []struct {
		m       manifest
		version int
	}{
		{manifest{framework: "fw", generation: 7, applying: true, applyGen: 6, applyChunks: 1}, formatRecords},
		{manifest{framework: "fw", generation: 7, applying: true, applyGen: 7, applyChunks: 0, layout: formatRecords}, formatWriter},
		{manifest{framework: "fw", generation: 3, logFrom: 4, shape: encodeShape(&snode{}), layout: formatPacked}, formatPacked},
		{manifest{framework: "fw", generation: 3, shape: shapeCode{nodes: 2, bits: "\x00"}, layout: formatPacked}, formatPacked},
		{manifest{framework: "fw", generation: 3, shape: shapeCode{nodes: 0}, layout: formatPacked}, formatWriter},
		{manifest{framework: "fw", generation: 3, layout: 7}, formatWriter},
		{manifest{framework: "fw", generation: 3, layout: formatRecords}, formatHashedParts}, // format 4 is ZooKeeper's packed layout only
	}
	for _, tc := range bads {
		if _, _, err := decodeManifest(encodeManifest(&tc.m, tc.version), maxFormat); !errors.Is(err, ErrCorrupt) {
			t.Errorf("bad manifest %+v (format %d) decoded: %v", tc.m, tc.version, err)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	k := recKey{kindEntry, "a/b"}
	rec, err := decodeRecord(encodeInline(k, []byte("data")), formatRecords)
	if err != nil || rec.kind != k.kind || rec.key != k.key || rec.form != formInline || string(rec.data) != "data" {
		t.Fatalf("inline: %+v, %v", rec, err)
	}
	ref := partsRef{size: 5 << 20, dataCRC: 42, gen: 9, parts: 90}
	rec, err = decodeRecord(encodeRef(k, &ref), formatRecords)
	if err != nil || rec.form != formParts || rec.ref != ref {
		t.Fatalf("ref: %+v, %v", rec, err)
	}
	pt, err := decodePart(encodePart(k, 9, 3, []byte("chunk")), formatRecords)
	if err != nil || pt.kind != k.kind || pt.key != k.key || pt.gen != 9 || pt.n != 3 || string(pt.data) != "chunk" {
		t.Fatalf("part: %+v, %v", pt, err)
	}
}

func TestOpenValueErrors(t *testing.T) {
	good := encodeInline(recKey{kindTask, "t"}, []byte("x"))
	mutate := func(f func([]byte)) []byte {
		v := append([]byte{}, good...)
		f(v)
		return v
	}
	for _, tc := range []struct {
		name string
		v    []byte
		want error
		msg  string
	}{
		{"empty", nil, ErrCorrupt, "shorter"},
		{"short", good[:headerSize-1], ErrCorrupt, "shorter"},
		{"magic", mutate(func(v []byte) { v[0] = 'X' }), ErrCorrupt, "magic"},
		{"newer", mutate(func(v []byte) { v[4] = formatRecords + 1 }), ErrNewerFormat, "format 2"},
		{"zero version", mutate(func(v []byte) { v[4] = 0 }), ErrCorrupt, "format 0"},
		{"type", mutate(func(v []byte) { v[5] = byte(typePart) }), ErrCorrupt, "holds a part"},
		{"reserved", mutate(func(v []byte) { v[7] = 1 }), ErrCorrupt, "reserved"},
		{"checksum", mutate(func(v []byte) { v[len(v)-1] ^= 1 }), ErrCorrupt, "checksum"},
	} {
		_, err := decodeRecord(tc.v, formatRecords)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want %v mentioning %q", tc.name, err, tc.want, tc.msg)
		}
	}
}

func TestEscapeName(t *testing.T) {
	for _, tc := range []struct{ in, out string }{
		{"task-1", "task-1"},
		{"a.b:c_d", "a.b:c_d"},
		{".", "%2E"},
		{"..", "%2E."},
		{".x", "%2Ex"},
		{"a/b", "a%2Fb"},
		{"100%", "100%25"},
		{"sp ace", "sp%20ace"},
		{"é", "%C3%A9"},
	} {
		if got := escapeName(tc.in); got != tc.out {
			t.Errorf("escapeName(%q) = %q, want %q", tc.in, got, tc.out)
		}
		if back, err := unescapeName(tc.out); err != nil || back != tc.in {
			t.Errorf("unescapeName(%q) = %q, %v", tc.out, back, err)
		}
	}
	for _, bad := range []string{"", "%", "%2", "%zz", "%2e", "%41", "a/b", ".", "..", "%2E%2E/"} {
		if k, err := unescapeName(bad); err == nil {
			t.Errorf("unescapeName(%q) accepted a non-canonical name: %q", bad, k)
		}
	}
}

func TestLayoutParse(t *testing.T) {
	for _, buckets := range []bool{false, true} {
		l := layout{buckets: buckets}
		k := recKey{kindTask, "a.1.2/x"}
		e := recKey{kindEntry, "cfg"}
		for _, tc := range []struct {
			rel  string
			want pathInfo
		}{
			{manifestName, pathInfo{class: classManifest}},
			{"leader", pathInfo{class: classLeader}},
			{"leader/anything/below", pathInfo{class: classLeader}},
			{l.record(k), pathInfo{class: classRecord, rec: k}},
			{l.record(e), pathInfo{class: classRecord, rec: e}},
			{l.part(k, 12, 3), pathInfo{class: classPart, rec: k, gen: 12, n: 3}},
			{l.part(e, 1, 0), pathInfo{class: classPart, rec: e, gen: 1, n: 0}},
			{journalName(5, 2), pathInfo{class: classJournal, gen: 5, n: 2}},
			{"journal", pathInfo{class: classDir}},
			{"journal/05.2", pathInfo{}},
			{"journal/5", pathInfo{}},
			{"blobs/x.k.1.0", pathInfo{}},
			{"blobs/t.k.1", pathInfo{}},
			{"junk", pathInfo{}},
			{"tasks/%zz", pathInfo{}},
		} {
			if got := l.parse(tc.rel); got != tc.want {
				t.Errorf("buckets=%v parse(%q) = %+v, want %+v", buckets, tc.rel, got, tc.want)
			}
		}
	}
	// Format 4 part names: fixed length whatever the key, in the bucket
	// the hash and part number choose.
	long := recKey{kindEntry, strings.Repeat("/", maxKeyBytes)}
	for _, k := range []recKey{{kindTask, "a.1.2/x"}, {kindEntry, "cfg"}, long} {
		for _, id := range []partID{{0, 0}, {7, 1}, {1<<64 - 1, maxParts - 1}} {
			rel := hashedPart(k, id.gen, id.n)
			dir, rest, _ := strings.Cut(rel, "/")
			b, name, _ := strings.Cut(rest, "/")
			hp, ok := parseHashedPart(b, name)
			if dir != blobsDir || !ok || hp.hash != partHash(k) || hp.id != id || len(name) > maxHashedPartName || bucketDir(rel) != blobsDir+"/"+b {
				t.Errorf("hashedPart(%.10q, %d, %d) = %q: parsed %+v, %v", k.key, id.gen, id.n, rel, hp, ok)
			}
		}
	}
	h := partHash(long)
	seen := map[string]bool{}
	for n := uint32(0); n < blobBuckets; n++ {
		seen[blobBucket(h[0], n)] = true
	}
	if len(seen) != blobBuckets {
		t.Errorf("256 parts of a record fill %d buckets, want all %d", len(seen), blobBuckets)
	}
	good := hashedPart(long, 3, 2)
	b, name, _ := strings.Cut(strings.TrimPrefix(good, blobsDir+"/"), "/")
	other := blobBucket(h[0], 3)
	for _, tc := range []struct{ bucket, name string }{
		{other, name}, // the wrong bucket
		{b, strings.ToUpper(name[:32]) + name[32:]}, // not canonical hex
		{b, name[1:]},   // a short hash
		{b, name + "0"}, // part 20: another bucket
		{b, strings.Replace(name, ".3.", ".03.", 1)},
		{b, name[:32] + ".3"},
	} {
		if hp, ok := parseHashedPart(tc.bucket, tc.name); ok {
			t.Errorf("parseHashedPart(%q, %q) accepted: %+v", tc.bucket, tc.name, hp)
		}
	}

	// A record in the wrong bucket is not ours.
	l := layout{buckets: true}
	rel := l.record(recKey{kindTask, "x"})
	wrong := "tasks/" + map[bool]string{true: "00", false: "01"}[bucketOf("x") != "00"] + "/x"
	if l.parse(rel).class != classRecord || l.parse(wrong).class != classForeign {
		t.Errorf("bucket check: %q -> %v, %q -> %v", rel, l.parse(rel).class, wrong, l.parse(wrong).class)
	}
}

func mustLimits(maxOps, budget, maxRecord int) limits {
	lim, err := txnLimits(maxOps, budget, maxRecord, true)
	if err != nil {
		panic(err)
	}
	return lim
}

// journalEngine returns an engine good enough to decode journals.
func journalEngine() *engine {
	s := &EtcdStore{root: "/test/fw/"}
	s.eng = &engine{framework: "fw", lay: layout{}, lim: mustLimits(128, 64<<10, DefaultMaxRecordBytes), be: s, format: formatRecords}
	return s.eng
}

func TestJournalRoundTrip(t *testing.T) {
	e := journalEngine()
	ops := []lop{
		{rec: recKey{kindTask, "small"}, data: []byte("s")},
		{rec: recKey{kindTask, "gone"}, del: true},
		{rec: recKey{kindEntry, "big"}, data: value("big", 200<<10)},
		{rec: recKey{kindEntry, "empty"}, data: []byte{}},
		{rec: recKey{kindEntry, "ref"}, ref: &partsRef{size: 1 << 20, dataCRC: 7, gen: 4, parts: 9}},
	}
	jw := newJournalWriter(4, e.lim.partSize)
	jw.frameworkID("fwid")
	for _, o := range ops {
		jw.op(o)
	}
	chunks := jw.finish()
	if len(chunks) < 4 {
		t.Fatalf("a 200 KiB value fit in %d chunks of %d bytes", len(chunks), e.lim.partSize)
	}
	vals := map[string][]byte{}
	for i, c := range chunks {
		if len(c) > e.lim.partSize {
			t.Fatalf("chunk %d has %d bytes, more than %d", i, len(c), e.lim.partSize)
		}
		vals[journalName(4, uint32(i))] = c
	}
	raw := &rawRead{journal: make([]rawJournal, len(chunks)), fetch: func(_ context.Context, rels []string) ([][]byte, error) {
		out := make([][]byte, len(rels))
		for i, r := range rels {
			out[i] = vals[r]
		}
		return out, nil
	}}
	man := &manifest{generation: 4, applying: true, applyGen: 4, applyChunks: uint64(len(chunks))}
	got, fwid, err := e.readJournal(context.Background(), raw, man)
	if err != nil {
		t.Fatalf("readJournal: %v", err)
	}
	if fwid == nil || *fwid != "fwid" || len(got) != len(ops) {
		t.Fatalf("readJournal: fwid %v, %d ops, want %d", fwid, len(got), len(ops))
	}
	for i := range ops {
		w, g := ops[i], got[i]
		if g.rec != w.rec || g.del != w.del || !bytes.Equal(g.data, w.data) || (w.ref != nil) != (g.ref != nil) || (w.ref != nil && *w.ref != *g.ref) {
			t.Errorf("op %d: got %+v, want %+v", i, g.rec, w.rec)
		}
	}
	// A missing chunk is corruption.
	delete(vals, journalName(4, 1))
	if _, _, err := e.readJournal(context.Background(), raw, man); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("journal with a missing chunk: %v", err)
	}
}

// FuzzDecode feeds arbitrary bytes to every decoder: none may panic, and
// none may allocate much more than its input (declared lengths are checked
// against the bytes that are there).
func FuzzDecode(f *testing.F) {
	k := recKey{kindTask, "task-1"}
	f.Add(encodeManifest(&manifest{framework: "fw", generation: 3, frameworkID: "id", tasks: 2, digest: 9}, formatRecords))
	f.Add(encodeManifest(&manifest{framework: "fw", generation: 3, applying: true, applyGen: 3, applyChunks: 2}, formatRecords))
	f.Add(encodeManifest(&manifest{framework: "fw", generation: 3, layout: formatRecords, writer: Fence{Key: "k", Revision: 5}}, formatWriter))
	f.Add(encodeInline(k, []byte("payload")))
	f.Add(encodeRef(k, &partsRef{size: 100, dataCRC: 1, gen: 2, parts: 3}))
	f.Add(encodePart(k, 2, 1, []byte("part")))
	jw := newJournalWriter(3, 4096)
	jw.frameworkID("id")
	jw.op(lop{rec: k, data: value("x", 9000)})
	jw.op(lop{rec: k, del: true})
	jw.op(lop{rec: k, ref: &partsRef{size: 10, parts: 1}})
	for _, c := range jw.finish() {
		f.Add(c)
	}
	lw := newLogWriter(4, 4096)
	lw.op(lop{rec: k, data: value("y", 9000)})
	lw.op(lop{rec: k, del: true})
	lw.op(lop{rec: k, ref: &partsRef{size: 10, parts: 1}})
	for _, c := range lw.finish() {
		f.Add(c)
	}
	f.Add(encodeShard(1, 1, 5, []shardRec{{rec: recKey{kindTask, "b"}, data: []byte("x")}, {rec: recKey{kindEntry, "c"}, ref: &partsRef{size: 9, parts: 2}}}))
	f.Add(encodeManifest(&manifest{framework: "fw", generation: 3, logFrom: 1, shape: encodeShape(&snode{kids: [2]*snode{{}, {}}}), layout: formatPacked}, formatPacked))
	f.Add(encodeManifest(&manifest{framework: "fw", generation: 3, logFrom: 1, shape: encodeShape(&snode{}), layout: formatPacked, writer: Fence{Key: "k", Revision: 5}}, formatWriter))
	f.Add(encodeManifest(&manifest{framework: "fw", generation: 9, logFrom: 7, shape: encodeShape(&snode{kids: [2]*snode{{}, {}}}), layout: formatPacked, writer: Fence{Key: "/z/leader/candidate-x-0000000001", Revision: 1 << 40}}, formatHashedParts))
	// Headers that declare huge lengths, with valid checksums.
	huge := newWriter(16)
	huge.uvarint(1 << 62)
	f.Add(huge.seal(typeManifest))
	huge = newWriter(16)
	huge.uvarint(1)
	huge.uvarint(0)
	huge.uvarint(1 << 40)
	f.Add(huge.seal(typeJournal))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Make most inputs pass the header so the payload decoders run.
		for _, typ := range []valueType{typeManifest, typeRecord, typePart, typeJournal, typeLog, typeShard} {
			v := data
			if len(data) >= headerSize && data[0]&1 == 1 {
				version := byte(1 + data[0]>>1&3) // formats 1 to 4
				v = append([]byte(magic), version, byte(typ), 0, 0, 0, 0, 0, 0)
				v = append(v, data[headerSize:]...)
				binary.LittleEndian.PutUint32(v[8:12], checksum(v[headerSize:]))
			}
			// Other goroutines (the fuzzing engine's) allocate too: take
			// the least of three runs of the deterministic decoder.
			least := uint64(1<<63 - 1)
			for run := 0; run < 3; run++ {
				before := allocatedBytes()
				switch typ {
				case typeManifest:
					if m, _, err := decodeManifest(v, maxFormat); err == nil && m.shape.nodes > 0 {
						_, _ = decodeShape(m.shape)
					}
				case typeRecord:
					_, _ = decodeRecord(v, formatRecords)
				case typePart:
					_, _ = decodePart(v, formatRecords)
				case typeJournal:
					_, _ = decodeJournal(v, formatRecords)
				case typeLog:
					_, _ = decodeLogChunk(v)
				case typeShard:
					_, _ = decodeShard(v)
				}
				least = min(least, allocatedBytes()-before)
			}
			if least > uint64(256*len(v)+64<<10) {
				t.Fatalf("decoding %d bytes as %v allocated %d bytes", len(v), typ, least)
			}
		}
	})
}

// allocatedBytes returns the bytes the process has allocated so far,
// without stopping the world.
func allocatedBytes() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func TestInspectManifest(t *testing.T) {
	w := Fence{Key: "/regent/fw/leader/7", Revision: 41}
	m := manifest{framework: "fw", generation: 12, frameworkID: "id", layout: formatRecords, writer: w}
	got, err := InspectManifest(encodeManifest(&m, formatWriter))
	want := ManifestInfo{Framework: "fw", Format: formatWriter, Generation: 12, FrameworkID: "id", Writer: w}
	if err != nil || got != want {
		t.Fatalf("InspectManifest: %+v, %v; want %+v", got, err, want)
	}
	if _, err := InspectManifest([]byte("RGNT junk")); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a truncated manifest: %v, want ErrCorrupt", err)
	}
	if p := ManifestPath("", "fw"); p != "/regent/fw/manifest" {
		t.Errorf("ManifestPath: %s", p)
	}
}
