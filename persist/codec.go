package persist

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"hash/fnv"
)

// Store formats. Every value's header carries the format of the store that
// wrote it; a reader refuses a value of a format higher than it reads for
// that backend (ErrNewerFormat), and leaves the store untouched.
const (
	// formatRecords stores one record per key: etcd's only format, and
	// ZooKeeper's before format 2 (read, and migrated on the first commit).
	formatRecords = 1
	// formatPacked is ZooKeeper's: records packed into hash shards plus a
	// log of recent commits (see zkpack.go).
	formatPacked = 2
	// formatWriter is what etcd writes now (and ZooKeeper wrote before
	// format 4): the layout of format 1 (etcd) or 2 (ZooKeeper), with a
	// manifest that names its layout and the fence of the term that wrote
	// it. Only the manifest changed: records, parts, journal chunks,
	// shards and log chunks keep the header of the format that introduced
	// them.
	formatWriter = 3
	// formatHashedParts is what ZooKeeper writes now: format 3 whose parts
	// are named by a hash of their record's kind and key, spread over
	// buckets (blobs/<bucket>/<hash>.<gen>.<n>, layout.go), instead of by
	// the escaped key in one directory, so that no child list comes near
	// ZooKeeper's 1 MiB response limit. The manifest's payload is format
	// 3's (with the packed layout); part values are unchanged.
	formatHashedParts = 4
	// maxFormat is the highest format this binary reads.
	maxFormat = formatHashedParts
)

// maxParts bounds the parts of one record a decoder accepts.
const maxParts = 1 << 16

// Every stored value starts with a 12-byte header:
//
//	0  4  magic "RGNT"
//	4  1  format version
//	5  1  value type (typeManifest ...)
//	6  2  reserved, zero
//	8  4  CRC-32C (Castagnoli) of the payload, little endian
//	12 .. payload
//
// Integers in payloads are unsigned varints unless noted.
const (
	headerSize = 12
	magic      = "RGNT"
)

// valueType says what a payload holds.
type valueType byte

const (
	typeManifest valueType = 1
	typeRecord   valueType = 2
	typePart     valueType = 3
	typeJournal  valueType = 4
	typeLog      valueType = 5 // format 2: one chunk of a commit's log entry
	typeShard    valueType = 6 // format 2: the records of one hash shard
)

func (t valueType) String() string {
	switch t {
	case typeManifest:
		return "manifest"
	case typeRecord:
		return "record"
	case typePart:
		return "part"
	case typeJournal:
		return "journal chunk"
	case typeLog:
		return "log chunk"
	case typeShard:
		return "shard"
	}
	return fmt.Sprintf("type %d", byte(t))
}

// Record forms.
const (
	formInline byte = 0 // the data follows the key
	formParts  byte = 1 // the data is in parts under blobs/
)

// Journal op codes.
const (
	jopPut         byte = 1
	jopDelete      byte = 2
	jopFrameworkID byte = 3
	jopPutRef      byte = 4 // a large record whose parts were staged
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func checksum(b []byte) uint32 { return crc32.Checksum(b, crcTable) }

// seal prepends the header to payload, which must start headerSize bytes
// into buf (buf[:headerSize] is overwritten).
func seal(buf []byte, t valueType, version int) []byte {
	copy(buf, magic)
	buf[4] = byte(version)
	buf[5] = byte(t)
	buf[6], buf[7] = 0, 0
	binary.LittleEndian.PutUint32(buf[8:12], checksum(buf[headerSize:]))
	return buf
}

// openValue checks the header of v and returns its payload. want is the
// type expected at this path, maxVersion the highest format the reader
// accepts there.
func openValue(v []byte, want valueType, maxVersion int) (payload []byte, version int, err error) {
	if len(v) < headerSize {
		return nil, 0, fmt.Errorf("%d bytes, shorter than the %d-byte header: %w", len(v), headerSize, ErrCorrupt)
	}
	if string(v[:4]) != magic {
		return nil, 0, fmt.Errorf("bad magic %q: %w", v[:4], ErrCorrupt)
	}
	version = int(v[4])
	if version > maxVersion {
		return nil, version, fmt.Errorf("format %d, this binary reads up to %d here: %w", version, maxVersion, ErrNewerFormat)
	}
	if version < 1 {
		return nil, version, fmt.Errorf("format %d: %w", version, ErrCorrupt)
	}
	// Formats 1 and 2 share the header; the payload decoders say which
	// types and fields each has.
	if got := valueType(v[5]); got != want {
		return nil, version, fmt.Errorf("holds a %v, want a %v: %w", got, want, ErrCorrupt)
	}
	if v[6] != 0 || v[7] != 0 {
		return nil, version, fmt.Errorf("reserved header bytes set: %w", ErrCorrupt)
	}
	payload = v[headerSize:]
	if sum := binary.LittleEndian.Uint32(v[8:12]); sum != checksum(payload) {
		return nil, version, fmt.Errorf("checksum mismatch (stored %08x, computed %08x): %w", sum, checksum(payload), ErrCorrupt)
	}
	return payload, version, nil
}

// reader decodes a payload. Every length it reads is checked against what
// is left, so a small input can never make it allocate much.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("truncated or malformed %s: %w", what, ErrCorrupt)
	}
}

func (r *reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte(what string) byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 1 {
		r.fail(what)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) fixed(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.fail(what)
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

// bytes reads a length-prefixed byte string.
func (r *reader) bytes(what string) []byte {
	n := r.uvarint(what)
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail(what)
		return nil
	}
	return r.fixed(int(n), what)
}

func (r *reader) rest() []byte {
	if r.err != nil {
		return nil
	}
	out := r.b
	r.b = nil
	return out
}

func (r *reader) done(what string) {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d trailing bytes after %s: %w", len(r.b), what, ErrCorrupt)
	}
}

// writer builds a payload after a reserved header.
type writer struct{ b []byte }

func newWriter(size int) *writer {
	w := &writer{b: make([]byte, headerSize, headerSize+size)}
	return w
}

func (w *writer) uvarint(v uint64)        { w.b = binary.AppendUvarint(w.b, v) }
func (w *writer) byte(c byte)             { w.b = append(w.b, c) }
func (w *writer) raw(p []byte)            { w.b = append(w.b, p...) }
func (w *writer) str(s string)            { w.uvarint(uint64(len(s))); w.b = append(w.b, s...) }
func (w *writer) u64(v uint64)            { w.b = binary.LittleEndian.AppendUint64(w.b, v) }
func (w *writer) seal(t valueType) []byte { return seal(w.b, t, formatRecords) }

// sealAs seals the payload as a value of format version.
func (w *writer) sealAs(t valueType, version int) []byte { return seal(w.b, t, version) }

// manifest is the root of a framework's store.
type manifest struct {
	framework   string
	generation  uint64
	frameworkID string
	tasks       uint64 // number of task records
	entries     uint64 // number of entries
	digest      uint64 // XOR of recordHash over every record
	// applying marks a journaled commit whose journal is complete but
	// whose ops may not all be applied yet: readers replay the journal.
	applying    bool
	applyGen    uint64
	applyChunks uint64
	// Format 2 (ZooKeeper) only: the log holds every generation in
	// (logFrom, generation], and shape is the shard trie (see shape.go).
	logFrom uint64
	shape   shapeCode
	// layout is formatRecords or formatPacked: how the records are
	// stored. Formats 1 and 2 imply it; format 3 says it.
	layout int
	// writer is the fence of the term that wrote this manifest (format 3;
	// zero in older ones).
	writer Fence
}

// encodeManifest encodes m in the given format: formatRecords or
// formatPacked (what older binaries wrote; tests use them), or
// formatWriter and formatHashedParts, whose payload opens with the layout
// byte and ends with the writer's fence.
func encodeManifest(m *manifest, version int) []byte {
	w := newWriter(96 + len(m.framework) + len(m.frameworkID) + len(m.shape.bits) + len(m.writer.Key))
	if version >= formatWriter {
		w.byte(byte(m.layout))
	}
	w.str(m.framework)
	w.uvarint(m.generation)
	w.str(m.frameworkID)
	w.uvarint(m.tasks)
	w.uvarint(m.entries)
	w.u64(m.digest)
	if m.layout == formatPacked {
		// No journal mark: the log's start and the shard trie.
		w.uvarint(m.logFrom)
		w.uvarint(uint64(m.shape.nodes))
		w.str(m.shape.bits)
	} else if m.applying {
		w.byte(1)
		w.uvarint(m.applyGen)
		w.uvarint(m.applyChunks)
	} else {
		w.byte(0)
	}
	if version >= formatWriter {
		w.str(m.writer.Key)
		w.u64(uint64(m.writer.Revision))
	}
	return w.sealAs(typeManifest, version)
}

// decodeManifest decodes a manifest of any format up to maxVersion and
// returns its format.
func decodeManifest(v []byte, maxVersion int) (*manifest, int, error) {
	p, version, err := openValue(v, typeManifest, maxVersion)
	if err != nil {
		return nil, version, err
	}
	r := &reader{b: p}
	layout := version
	if version >= formatWriter {
		layout = int(r.byte("layout"))
		if r.err == nil && layout != formatRecords && layout != formatPacked {
			return nil, version, fmt.Errorf("layout %d, want %d or %d: %w", layout, formatRecords, formatPacked, ErrCorrupt)
		}
		if r.err == nil && version == formatHashedParts && layout != formatPacked {
			return nil, version, fmt.Errorf("format %d with layout %d: only ZooKeeper's packed layout (%d) has it: %w",
				version, layout, formatPacked, ErrCorrupt)
		}
	}
	m := readManifestHead(r)
	m.layout = layout
	if layout == formatPacked {
		m.logFrom = r.uvarint("log start")
		nodes := r.uvarint("shard trie size")
		bits := r.bytes("shard trie")
		if r.err == nil {
			if nodes == 0 || nodes > 8*uint64(len(bits)) || (nodes+7)/8 != uint64(len(bits)) {
				return nil, version, fmt.Errorf("shard trie of %d nodes in %d bytes: %w", nodes, len(bits), ErrCorrupt)
			}
			m.shape = shapeCode{nodes: int(nodes), bits: string(bits)}
		}
	} else {
		switch r.byte("applying flag") {
		case 0:
		case 1:
			m.applying = true
			m.applyGen = r.uvarint("journal generation")
			m.applyChunks = r.uvarint("journal chunk count")
		default:
			r.fail("applying flag")
		}
	}
	if version >= formatWriter {
		m.writer.Key = string(r.bytes("writer's fence key"))
		if d := r.fixed(8, "writer's fence revision"); d != nil {
			m.writer.Revision = int64(binary.LittleEndian.Uint64(d))
		}
	}
	r.done("manifest")
	if r.err != nil {
		return nil, version, r.err
	}
	if m.applying && (m.applyGen != m.generation || m.applyChunks == 0) {
		return nil, version, fmt.Errorf("journal mark for generation %d (%d chunks) in manifest of generation %d: %w",
			m.applyGen, m.applyChunks, m.generation, ErrCorrupt)
	}
	if layout == formatPacked {
		if m.logFrom > m.generation {
			return nil, version, fmt.Errorf("log starts after generation %d, the manifest's %d: %w", m.logFrom, m.generation, ErrCorrupt)
		}
		if _, err := decodeShape(m.shape); err != nil {
			return nil, version, err
		}
	}
	return m, version, nil
}

// readManifestHead reads the fields that open a manifest in every format.
func readManifestHead(r *reader) *manifest {
	m := &manifest{}
	m.framework = string(r.bytes("framework name"))
	m.generation = r.uvarint("generation")
	m.frameworkID = string(r.bytes("framework id"))
	m.tasks = r.uvarint("task count")
	m.entries = r.uvarint("entry count")
	if d := r.fixed(8, "digest"); d != nil {
		m.digest = binary.LittleEndian.Uint64(d)
	}
	return m
}

// record is a decoded record value: inline data, or a reference to parts.
type record struct {
	kind recKind
	key  string
	form byte
	data []byte   // inline data
	ref  partsRef // parts form
}

func encodeInline(k recKey, data []byte) []byte {
	w := newWriter(12 + len(k.key) + len(data))
	w.byte(byte(k.kind))
	w.byte(formInline)
	w.str(k.key)
	w.raw(data)
	return w.seal(typeRecord)
}

func encodeRef(k recKey, ref *partsRef) []byte {
	w := newWriter(40 + len(k.key))
	w.byte(byte(k.kind))
	w.byte(formParts)
	w.str(k.key)
	w.b = writeRef(w.b, ref)
	return w.seal(typeRecord)
}

// inlineOverhead bounds the bytes encodeInline adds to key and data.
func inlineOverhead(key string) int { return headerSize + 2 + binary.MaxVarintLen64 + len(key) }

func decodeRecord(v []byte, maxVersion int) (*record, error) {
	p, _, err := openValue(v, typeRecord, maxVersion)
	if err != nil {
		return nil, err
	}
	r := &reader{b: p}
	rec := &record{}
	rec.kind = recKind(r.byte("record kind"))
	rec.form = r.byte("record form")
	rec.key = string(r.bytes("record key"))
	if r.err == nil && !rec.kind.valid() {
		return nil, fmt.Errorf("unknown record kind %d: %w", rec.kind, ErrCorrupt)
	}
	switch rec.form {
	case formInline:
		rec.data = r.rest()
	case formParts:
		rec.ref = readRef(r)
		r.done("record reference")
	default:
		if r.err == nil {
			return nil, fmt.Errorf("unknown record form %d: %w", rec.form, ErrCorrupt)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return rec, nil
}

// encodePart encodes one part of a large record. Parts keep format 1's
// encoding (and version) in every format: a part is the same value under
// its format 3 name and its format 4 one.
func encodePart(k recKey, gen uint64, n uint32, data []byte) []byte {
	w := newWriter(32 + len(k.key) + len(data))
	w.byte(byte(k.kind))
	w.str(k.key)
	w.uvarint(gen)
	w.uvarint(uint64(n))
	w.raw(data)
	return w.seal(typePart)
}

type part struct {
	kind recKind
	key  string
	gen  uint64
	n    uint64
	data []byte
}

func decodePart(v []byte, maxVersion int) (*part, error) {
	p, _, err := openValue(v, typePart, maxVersion)
	if err != nil {
		return nil, err
	}
	r := &reader{b: p}
	pt := &part{}
	pt.kind = recKind(r.byte("part kind"))
	pt.key = string(r.bytes("part key"))
	pt.gen = r.uvarint("part generation")
	pt.n = r.uvarint("part index")
	pt.data = r.rest()
	if r.err != nil {
		return nil, r.err
	}
	return pt, nil
}

// lop is one logical change of a commit, as the journal carries it.
type lop struct {
	rec  recKey
	del  bool
	data []byte
	ref  *partsRef // a large record, staged in parts: data is not carried
}

// partsRef describes a record stored in parts.
type partsRef struct {
	size    uint64
	dataCRC uint32
	gen     uint64
	parts   uint32
}

// journalChunk is one decoded journal value or log chunk.
type journalChunk struct {
	gen   uint64
	n     uint64
	total uint64 // log chunks: the entry's chunk count
	ops   []jop
}

// jop is a journal op; a put may be one fragment of a larger value.
type jop struct {
	code   byte
	rec    recKey
	size   uint64 // put: total length of the value
	offset uint64 // put: where frag starts
	frag   []byte
	fwid   string
	ref    partsRef
}

// journalWriter packs logical ops into chunks of at most limit bytes,
// splitting large values into fragments. It writes format 1 journal chunks
// (gen, n, op count, ops) or, with newLogWriter, format 2 log chunks,
// which also carry the chunk count (gen, n, total, op count, ops).
type journalWriter struct {
	gen    uint64
	limit  int
	typ    valueType
	bodies [][]byte
	counts []int
	nops   int
	body   []byte
}

func newJournalWriter(gen uint64, limit int) *journalWriter {
	return &journalWriter{gen: gen, limit: limit, typ: typeJournal}
}

// newLogWriter returns a writer of the log entry of generation gen.
func newLogWriter(gen uint64, limit int) *journalWriter {
	return &journalWriter{gen: gen, limit: limit, typ: typeLog}
}

// opHead bounds the bytes an op adds besides its key and fragment.
const opHead = 3 + 4*binary.MaxVarintLen64

func (j *journalWriter) room() int {
	return j.limit - len(j.body) - 4*binary.MaxVarintLen64 - headerSize
}

func (j *journalWriter) flush() {
	if j.nops == 0 {
		return
	}
	j.bodies = append(j.bodies, append([]byte(nil), j.body...))
	j.counts = append(j.counts, j.nops)
	j.body = j.body[:0]
	j.nops = 0
}

// size returns the bytes of the ops written so far.
func (j *journalWriter) size() int {
	n := len(j.body)
	for _, b := range j.bodies {
		n += len(b)
	}
	return n
}

func (j *journalWriter) ensure(need int) {
	if j.room() < need {
		j.flush()
	}
}

func (j *journalWriter) frameworkID(id string) {
	j.ensure(opHead + len(id))
	j.body = append(j.body, jopFrameworkID)
	j.body = binary.AppendUvarint(j.body, uint64(len(id)))
	j.body = append(j.body, id...)
	j.nops++
}

func (j *journalWriter) op(o lop) {
	if o.del {
		j.ensure(opHead + len(o.rec.key))
		j.body = append(j.body, jopDelete, byte(o.rec.kind))
		j.body = binary.AppendUvarint(j.body, uint64(len(o.rec.key)))
		j.body = append(j.body, o.rec.key...)
		j.nops++
		return
	}
	if o.ref != nil {
		j.ensure(opHead + 4 + len(o.rec.key))
		j.body = append(j.body, jopPutRef, byte(o.rec.kind))
		j.body = binary.AppendUvarint(j.body, uint64(len(o.rec.key)))
		j.body = append(j.body, o.rec.key...)
		j.body = writeRef(j.body, o.ref)
		j.nops++
		return
	}
	const minFrag = 1024
	off := 0
	for {
		need := opHead + len(o.rec.key)
		if j.room() < need+min(minFrag, len(o.data)-off) {
			j.flush()
		}
		n := min(len(o.data)-off, j.room()-need)
		j.body = append(j.body, jopPut, byte(o.rec.kind))
		j.body = binary.AppendUvarint(j.body, uint64(len(o.rec.key)))
		j.body = append(j.body, o.rec.key...)
		j.body = binary.AppendUvarint(j.body, uint64(len(o.data)))
		j.body = binary.AppendUvarint(j.body, uint64(off))
		j.body = binary.AppendUvarint(j.body, uint64(n))
		j.body = append(j.body, o.data[off:off+n]...)
		j.nops++
		off += n
		if off >= len(o.data) {
			return
		}
	}
}

// finish returns the sealed chunks. A log entry has at least one chunk,
// empty if the commit changed no record.
func (j *journalWriter) finish() [][]byte {
	j.flush()
	if j.typ == typeLog && len(j.bodies) == 0 {
		j.bodies, j.counts = [][]byte{nil}, []int{0}
	}
	out := make([][]byte, len(j.bodies))
	for i, body := range j.bodies {
		w := newWriter(len(body) + 4*binary.MaxVarintLen64)
		w.uvarint(j.gen)
		w.uvarint(uint64(i))
		if j.typ == typeLog {
			w.uvarint(uint64(len(j.bodies)))
			w.uvarint(uint64(j.counts[i]))
			w.raw(body)
			out[i] = w.sealAs(typeLog, formatPacked)
			continue
		}
		w.uvarint(uint64(j.counts[i]))
		w.raw(body)
		out[i] = w.seal(typeJournal)
	}
	j.bodies, j.counts = nil, nil
	return out
}

func decodeJournal(v []byte, maxVersion int) (*journalChunk, error) {
	p, _, err := openValue(v, typeJournal, maxVersion)
	if err != nil {
		return nil, err
	}
	r := &reader{b: p}
	c := &journalChunk{}
	c.gen = r.uvarint("journal generation")
	c.n = r.uvarint("chunk index")
	c.ops = decodeOps(r)
	r.done("journal chunk")
	if r.err != nil {
		return nil, r.err
	}
	return c, nil
}

// decodeLogChunk decodes one chunk of a format 2 log entry.
func decodeLogChunk(v []byte) (*journalChunk, error) {
	p, version, err := openValue(v, typeLog, maxFormat)
	if err != nil {
		return nil, err
	}
	if version != formatPacked {
		return nil, fmt.Errorf("a log chunk of format %d: %w", version, ErrCorrupt)
	}
	r := &reader{b: p}
	c := &journalChunk{}
	c.gen = r.uvarint("log generation")
	c.n = r.uvarint("chunk index")
	c.total = r.uvarint("chunk count")
	if r.err == nil && c.n >= c.total {
		r.err = fmt.Errorf("chunk %d of %d: %w", c.n, c.total, ErrCorrupt)
	}
	c.ops = decodeOps(r)
	r.done("log chunk")
	if r.err != nil {
		return nil, r.err
	}
	return c, nil
}

// decodeOps reads an op count and the ops of a journal or log chunk.
func decodeOps(r *reader) []jop {
	nops := r.uvarint("op count")
	if r.err == nil && nops > uint64(len(r.b)) {
		r.fail("op count")
	}
	if r.err != nil {
		return nil
	}
	ops := make([]jop, 0, min(nops, 64))
	for i := uint64(0); i < nops && r.err == nil; i++ {
		var o jop
		o.code = r.byte("op code")
		switch o.code {
		case jopPut:
			o.rec.kind = recKind(r.byte("op kind"))
			o.rec.key = string(r.bytes("op key"))
			o.size = r.uvarint("value size")
			o.offset = r.uvarint("fragment offset")
			o.frag = r.bytes("fragment")
			if r.err == nil && (o.offset > o.size || uint64(len(o.frag)) > o.size-o.offset) {
				r.err = fmt.Errorf("fragment [%d,+%d) outside a value of %d bytes: %w", o.offset, len(o.frag), o.size, ErrCorrupt)
			}
		case jopDelete:
			o.rec.kind = recKind(r.byte("op kind"))
			o.rec.key = string(r.bytes("op key"))
		case jopPutRef:
			o.rec.kind = recKind(r.byte("op kind"))
			o.rec.key = string(r.bytes("op key"))
			o.ref = readRef(r)
		case jopFrameworkID:
			o.fwid = string(r.bytes("framework id"))
		default:
			if r.err == nil {
				r.err = fmt.Errorf("unknown journal op %d: %w", o.code, ErrCorrupt)
			}
		}
		if r.err == nil && o.code != jopFrameworkID && !o.rec.kind.valid() {
			r.err = fmt.Errorf("unknown record kind %d in journal: %w", o.rec.kind, ErrCorrupt)
		}
		ops = append(ops, o)
	}
	return ops
}

// readRef reads a parts reference: size, checksum, generation, count.
func readRef(r *reader) partsRef {
	var ref partsRef
	ref.size = r.uvarint("value size")
	if c := r.fixed(4, "value checksum"); c != nil {
		ref.dataCRC = binary.LittleEndian.Uint32(c)
	}
	ref.gen = r.uvarint("part generation")
	n := r.uvarint("part count")
	if r.err == nil && (n == 0 || n > maxParts) {
		r.err = fmt.Errorf("part count %d out of range: %w", n, ErrCorrupt)
	}
	ref.parts = uint32(n)
	return ref
}

// writeRef writes what readRef reads.
func writeRef(b []byte, ref *partsRef) []byte {
	b = binary.AppendUvarint(b, ref.size)
	b = binary.LittleEndian.AppendUint32(b, ref.dataCRC)
	b = binary.AppendUvarint(b, ref.gen)
	return binary.AppendUvarint(b, uint64(ref.parts))
}

// recordHash identifies a record's content for the manifest digest.
func recordHash(k recKey, data []byte) uint64 {
	return recordHashCRC(k, checksum(data), uint64(len(data)))
}

func recordHashCRC(k recKey, dataCRC uint32, size uint64) uint64 {
	h := fnv.New64a()
	var buf [13]byte
	buf[0] = byte(k.kind)
	binary.LittleEndian.PutUint32(buf[1:5], dataCRC)
	binary.LittleEndian.PutUint64(buf[5:13], size)
	h.Write(buf[:])
	h.Write([]byte(k.key))
	return h.Sum64()
}
