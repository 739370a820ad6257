package persist

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"hash/fnv"
)

// formatVersion is the on-disk format this binary writes. A store whose
// values carry a higher version is refused with ErrNewerFormat; a lower
// one would be decoded by its own decoder and rewritten by the first
// commit after a successful Load (see migrateView). Only format 1 exists.
const formatVersion = 1

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
func seal(buf []byte, t valueType) []byte {
	copy(buf, magic)
	buf[4] = formatVersion
	buf[5] = byte(t)
	buf[6], buf[7] = 0, 0
	binary.LittleEndian.PutUint32(buf[8:12], checksum(buf[headerSize:]))
	return buf
}

// openValue checks the header of v and returns its payload. want is the
// type expected at this path.
func openValue(v []byte, want valueType) (payload []byte, version int, err error) {
	if len(v) < headerSize {
		return nil, 0, fmt.Errorf("%d bytes, shorter than the %d-byte header: %w", len(v), headerSize, ErrCorrupt)
	}
	if string(v[:4]) != magic {
		return nil, 0, fmt.Errorf("bad magic %q: %w", v[:4], ErrCorrupt)
	}
	version = int(v[4])
	if version > formatVersion {
		return nil, version, fmt.Errorf("format %d, this binary reads up to %d: %w", version, formatVersion, ErrNewerFormat)
	}
	if version < 1 {
		return nil, version, fmt.Errorf("format %d: %w", version, ErrCorrupt)
	}
	// Only format 1 exists; an older version would be decoded here by its
	// own code before the checks below, which are format 1's.
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
func (w *writer) u32(v uint32)            { w.b = binary.LittleEndian.AppendUint32(w.b, v) }
func (w *writer) u64(v uint64)            { w.b = binary.LittleEndian.AppendUint64(w.b, v) }
func (w *writer) seal(t valueType) []byte { return seal(w.b, t) }

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
}

func encodeManifest(m *manifest) []byte {
	w := newWriter(64 + len(m.framework) + len(m.frameworkID))
	w.str(m.framework)
	w.uvarint(m.generation)
	w.str(m.frameworkID)
	w.uvarint(m.tasks)
	w.uvarint(m.entries)
	w.u64(m.digest)
	if m.applying {
		w.byte(1)
		w.uvarint(m.applyGen)
		w.uvarint(m.applyChunks)
	} else {
		w.byte(0)
	}
	return w.seal(typeManifest)
}

func decodeManifest(v []byte) (*manifest, int, error) {
	p, version, err := openValue(v, typeManifest)
	if err != nil {
		return nil, version, err
	}
	r := &reader{b: p}
	m := &manifest{}
	m.framework = string(r.bytes("framework name"))
	m.generation = r.uvarint("generation")
	m.frameworkID = string(r.bytes("framework id"))
	m.tasks = r.uvarint("task count")
	m.entries = r.uvarint("entry count")
	if d := r.fixed(8, "digest"); d != nil {
		m.digest = binary.LittleEndian.Uint64(d)
	}
	switch r.byte("applying flag") {
	case 0:
	case 1:
		m.applying = true
		m.applyGen = r.uvarint("journal generation")
		m.applyChunks = r.uvarint("journal chunk count")
		if r.err == nil && (m.applyGen != m.generation || m.applyChunks == 0) {
			r.err = fmt.Errorf("journal mark for generation %d (%d chunks) in manifest of generation %d: %w",
				m.applyGen, m.applyChunks, m.generation, ErrCorrupt)
		}
	default:
		r.fail("applying flag")
	}
	r.done("manifest")
	if r.err != nil {
		return nil, version, r.err
	}
	return m, version, nil
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
	w.uvarint(ref.size)
	w.u32(ref.dataCRC)
	w.uvarint(ref.gen)
	w.uvarint(uint64(ref.parts))
	return w.seal(typeRecord)
}

// inlineOverhead bounds the bytes encodeInline adds to key and data.
func inlineOverhead(key string) int { return headerSize + 2 + binary.MaxVarintLen64 + len(key) }

func decodeRecord(v []byte) (*record, error) {
	p, _, err := openValue(v, typeRecord)
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
		rec.ref.size = r.uvarint("record size")
		if c := r.fixed(4, "record checksum"); c != nil {
			rec.ref.dataCRC = binary.LittleEndian.Uint32(c)
		}
		rec.ref.gen = r.uvarint("part generation")
		n := r.uvarint("part count")
		if r.err == nil && (n == 0 || n > maxParts) {
			r.err = fmt.Errorf("part count %d out of range: %w", n, ErrCorrupt)
		}
		rec.ref.parts = uint32(n)
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

func decodePart(v []byte) (*part, error) {
	p, _, err := openValue(v, typePart)
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

// journalChunk is one decoded journal value.
type journalChunk struct {
	gen uint64
	n   uint64
	ops []jop
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
// splitting large values into fragments.
type journalWriter struct {
	gen    uint64
	limit  int
	chunks [][]byte
	w      *writer
	nops   int
	body   []byte
}

func newJournalWriter(gen uint64, limit int) *journalWriter {
	return &journalWriter{gen: gen, limit: limit}
}

// opHead bounds the bytes an op adds besides its key and fragment.
const opHead = 3 + 4*binary.MaxVarintLen64

func (j *journalWriter) room() int {
	return j.limit - len(j.body) - 3*binary.MaxVarintLen64 - headerSize
}

func (j *journalWriter) flush() {
	if j.nops == 0 {
		return
	}
	w := newWriter(len(j.body) + 3*binary.MaxVarintLen64)
	w.uvarint(j.gen)
	w.uvarint(uint64(len(j.chunks)))
	w.uvarint(uint64(j.nops))
	w.raw(j.body)
	j.chunks = append(j.chunks, w.seal(typeJournal))
	j.body = j.body[:0]
	j.nops = 0
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
		j.body = binary.AppendUvarint(j.body, o.ref.size)
		j.body = binary.LittleEndian.AppendUint32(j.body, o.ref.dataCRC)
		j.body = binary.AppendUvarint(j.body, o.ref.gen)
		j.body = binary.AppendUvarint(j.body, uint64(o.ref.parts))
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

func (j *journalWriter) finish() [][]byte {
	j.flush()
	return j.chunks
}

func decodeJournal(v []byte) (*journalChunk, error) {
	p, _, err := openValue(v, typeJournal)
	if err != nil {
		return nil, err
	}
	r := &reader{b: p}
	c := &journalChunk{}
	c.gen = r.uvarint("journal generation")
	c.n = r.uvarint("chunk index")
	nops := r.uvarint("op count")
	if r.err == nil && nops > uint64(len(r.b)) {
		r.fail("op count")
	}
	if r.err != nil {
		return nil, r.err
	}
	c.ops = make([]jop, 0, min(nops, 64))
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
			o.ref.size = r.uvarint("value size")
			if c := r.fixed(4, "value checksum"); c != nil {
				o.ref.dataCRC = binary.LittleEndian.Uint32(c)
			}
			o.ref.gen = r.uvarint("part generation")
			n := r.uvarint("part count")
			if r.err == nil && (n == 0 || n > maxParts) {
				r.err = fmt.Errorf("part count %d out of range: %w", n, ErrCorrupt)
			}
			o.ref.parts = uint32(n)
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
		c.ops = append(c.ops, o)
	}
	r.done("journal chunk")
	if r.err != nil {
		return nil, r.err
	}
	return c, nil
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
