package persist

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash/fnv"
	"strconv"
	"strings"
)

// recKind says which map of the Snapshot a record belongs to.
type recKind byte

const (
	kindTask  recKind = 't'
	kindEntry recKind = 'e'
)

func (k recKind) valid() bool { return k == kindTask || k == kindEntry }

func (k recKind) String() string {
	if k == kindTask {
		return "task"
	}
	return "entry"
}

// recKey names one record: a task or an entry.
type recKey struct {
	kind recKind
	key  string
}

// Names of the fixed nodes under <prefix>/<framework>/.
const (
	manifestName = "manifest"
	tasksDir     = "tasks"
	entriesDir   = "entries"
	blobsDir     = "blobs"
	journalDir   = "journal"
	// Format 2 (ZooKeeper): shard znodes and the log of recent commits.
	shardsDir = "shards"
	logDir    = "log"
	// leaderDir belongs to ha/ (election keys); persist never reads,
	// writes or judges anything below it.
	leaderDir = "leader"
)

// layout maps records to paths relative to <prefix>/<framework>/. etcd uses
// flat directories; ZooKeeper adds a bucket level (buckets == true).
//
//	manifest
//	tasks/[<bucket>/]<escaped task id>
//	entries/[<bucket>/]<escaped key>
//	blobs/<t|e>.<escaped key>.<generation>.<part>   parts of large records
//	                                                  (ZooKeeper format 4:
//	                                                  hashedPart)
//	journal/<generation>.<chunk>                      write-ahead journal
//	leader/...                                        ha's, ignored
type layout struct {
	buckets bool
}

func (l layout) record(k recKey) string {
	dir := tasksDir
	if k.kind == kindEntry {
		dir = entriesDir
	}
	esc := escapeName(k.key)
	if l.buckets {
		return dir + "/" + bucketOf(k.key) + "/" + esc
	}
	return dir + "/" + esc
}

func (l layout) part(k recKey, gen uint64, n uint32) string {
	return blobsDir + "/" + string(k.kind) + "." + escapeName(k.key) + "." +
		strconv.FormatUint(gen, 10) + "." + strconv.FormatUint(uint64(n), 10)
}

// Format 4 (ZooKeeper) names parts by a hash of their record instead of
// its escaped key, in buckets:
//
//	blobs/<bucket>/<hash>.<generation>.<part>
//
// hash is the first 128 bits of SHA-256 over the record's kind byte and
// key, in 32 lowercase hex digits; bucket is (the hash's first byte + part)
// mod 256 in two hex digits, so that a record's parts go round all 256
// buckets from a place its hash chooses. A name in a bucket has at most
// maxHashedPartName bytes whatever the key, and a part's value carries its
// record's kind and key, so a part found under another record's hash (a
// collision, or a value copied) is detected.
const (
	blobBuckets       = 256
	partHashLen       = 16
	maxHashedPartName = 2*partHashLen + 1 + 20 + 1 + 5 // gen < 2^64, part < maxParts
)

// partHash is the hash that names the parts of a record in format 4. Part
// of format 4: never change it.
func partHash(k recKey) [partHashLen]byte {
	h := sha256.New()
	h.Write([]byte{byte(k.kind)})
	h.Write([]byte(k.key))
	var sum [sha256.Size]byte
	var out [partHashLen]byte
	copy(out[:], h.Sum(sum[:0]))
	return out
}

// blobBucket names the bucket of part n of a record whose hash starts with
// h0.
func blobBucket(h0 byte, n uint32) string {
	b := h0 + byte(n)
	const hexDigits = "0123456789abcdef"
	return string([]byte{hexDigits[b>>4], hexDigits[b&0xf]})
}

// hashedPart names part n of generation gen of record k in format 4.
func hashedPart(k recKey, gen uint64, n uint32) string {
	return hashedPartOf(partHash(k), gen, n)
}

func hashedPartOf(h [partHashLen]byte, gen uint64, n uint32) string {
	return blobsDir + "/" + blobBucket(h[0], n) + "/" + hex.EncodeToString(h[:]) + "." +
		strconv.FormatUint(gen, 10) + "." + strconv.FormatUint(uint64(n), 10)
}

// hashedPartInfo is a parsed format 4 part name.
type hashedPartInfo struct {
	hash [partHashLen]byte
	id   partID
}

// parseHashedPart parses the name of a child of blobs/<bucket>/: the hash
// in lowercase hex, then canonical decimals, in the bucket they choose.
func parseHashedPart(bucket, name string) (hashedPartInfo, bool) {
	var hp hashedPartInfo
	if len(name) > maxHashedPartName || len(name) < 2*partHashLen+4 || name[2*partHashLen] != '.' {
		return hp, false
	}
	hx := name[:2*partHashLen]
	if _, err := hex.Decode(hp.hash[:], []byte(hx)); err != nil || hex.EncodeToString(hp.hash[:]) != hx {
		return hp, false
	}
	gen, n, ok := parseGenN(name[2*partHashLen+1:])
	if !ok || blobBucket(hp.hash[0], n) != bucket {
		return hp, false
	}
	hp.id = partID{gen: gen, n: n}
	return hp, true
}

func journalName(gen uint64, n uint32) string {
	return journalDir + "/" + strconv.FormatUint(gen, 10) + "." + strconv.FormatUint(uint64(n), 10)
}

// logName names chunk n of the log entry of generation gen (format 2).
func logName(gen uint64, n uint32) string {
	return logDir + "/" + strconv.FormatUint(gen, 10) + "." + strconv.FormatUint(uint64(n), 10)
}

// bucketOf spreads keys over 256 two-hex-digit buckets, so that no
// ZooKeeper child list grows large (100k tasks: about 400 per bucket).
func bucketOf(key string) string {
	h := fnv.New32a()
	h.Write([]byte(key))
	const hexDigits = "0123456789abcdef"
	b := byte(h.Sum32())
	return string([]byte{hexDigits[b>>4], hexDigits[b&0xf]})
}

// pathClass is what a relative path was recognised as.
type pathClass int

const (
	classForeign pathClass = iota
	classManifest
	classRecord
	classPart
	classJournal
	classLeader
	classDir // a directory node (ZooKeeper: tasks, tasks/00, ...)
)

// pathInfo is a parsed relative path.
type pathInfo struct {
	class pathClass
	rec   recKey
	gen   uint64
	n     uint32
}

// parse classifies a path relative to <prefix>/<framework>/.
func (l layout) parse(rel string) pathInfo {
	if rel == manifestName {
		return pathInfo{class: classManifest}
	}
	if rel == leaderDir || strings.HasPrefix(rel, leaderDir+"/") {
		return pathInfo{class: classLeader}
	}
	dir, rest, ok := strings.Cut(rel, "/")
	if !ok {
		switch rel {
		case tasksDir, entriesDir, blobsDir, journalDir:
			return pathInfo{class: classDir}
		}
		return pathInfo{}
	}
	switch dir {
	case tasksDir, entriesDir:
		kind := kindTask
		if dir == entriesDir {
			kind = kindEntry
		}
		if l.buckets {
			b, name, ok := strings.Cut(rest, "/")
			if !validBucket(b) {
				return pathInfo{}
			}
			if !ok {
				return pathInfo{class: classDir}
			}
			if bucketOf(mustUnescape(name)) != b {
				return pathInfo{}
			}
			rest = name
		}
		key, err := unescapeName(rest)
		if err != nil {
			return pathInfo{}
		}
		return pathInfo{class: classRecord, rec: recKey{kind: kind, key: key}}
	case blobsDir:
		return parsePart(rest)
	case journalDir:
		gen, n, ok := parseGenN(rest)
		if !ok {
			return pathInfo{}
		}
		return pathInfo{class: classJournal, gen: gen, n: n}
	}
	return pathInfo{}
}

func mustUnescape(s string) string {
	k, err := unescapeName(s)
	if err != nil {
		return "\x00invalid"
	}
	return k
}

func validBucket(b string) bool {
	if len(b) != 2 {
		return false
	}
	for i := 0; i < 2; i++ {
		c := b[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// parsePart parses "<t|e>.<escaped key>.<gen>.<n>".
func parsePart(name string) pathInfo {
	if len(name) < 2 || name[1] != '.' || !recKind(name[0]).valid() {
		return pathInfo{}
	}
	kind := recKind(name[0])
	body := name[2:]
	i := strings.LastIndexByte(body, '.')
	if i < 0 {
		return pathInfo{}
	}
	j := strings.LastIndexByte(body[:i], '.')
	if j < 0 {
		return pathInfo{}
	}
	gen, n, ok := parseGenN(body[j+1:])
	if !ok {
		return pathInfo{}
	}
	key, err := unescapeName(body[:j])
	if err != nil {
		return pathInfo{}
	}
	return pathInfo{class: classPart, rec: recKey{kind: kind, key: key}, gen: gen, n: n}
}

// parseGenN parses "<gen>.<n>" in canonical decimal.
func parseGenN(s string) (uint64, uint32, bool) {
	a, b, ok := strings.Cut(s, ".")
	if !ok {
		return 0, 0, false
	}
	gen, ok1 := parseCanonical(a, 64)
	n, ok2 := parseCanonical(b, 32)
	return gen, uint32(n), ok1 && ok2
}

func parseCanonical(s string, bits int) (uint64, bool) {
	v, err := strconv.ParseUint(s, 10, bits)
	if err != nil || strconv.FormatUint(v, 10) != s {
		return 0, false
	}
	return v, true
}

// escapeName makes a key safe as one path component in etcd and
// ZooKeeper: bytes outside [A-Za-z0-9._:-] become %XX, and so does a
// leading '.', so that "." and ".." cannot occur. The mapping is
// injective and unescapeName inverts it.
func escapeName(key string) string {
	plain := true
	for i := 0; i < len(key); i++ {
		if !plainByte(key[i], i) {
			plain = false
			break
		}
	}
	if plain {
		return key
	}
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(key) + 8)
	for i := 0; i < len(key); i++ {
		c := key[i]
		if plainByte(c, i) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xf])
	}
	return b.String()
}

func plainByte(c byte, i int) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	case c == '-', c == '_', c == ':':
		return true
	case c == '.':
		return i > 0
	}
	return false
}

var errBadEscape = errors.New("bad escape")

// unescapeName inverts escapeName and accepts only its canonical output.
func unescapeName(s string) (string, error) {
	if s == "" {
		return "", errBadEscape
	}
	if !strings.Contains(s, "%") {
		for i := 0; i < len(s); i++ {
			if !plainByte(s[i], i) {
				return "", errBadEscape
			}
		}
		return s, nil
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			if !plainByte(c, len(out)) {
				return "", errBadEscape
			}
			out = append(out, c)
			continue
		}
		if i+2 >= len(s) {
			return "", errBadEscape
		}
		hi, ok1 := upperHex(s[i+1])
		lo, ok2 := upperHex(s[i+2])
		v := hi<<4 | lo
		if !ok1 || !ok2 || plainByte(v, len(out)) {
			return "", errBadEscape
		}
		out = append(out, v)
		i += 2
	}
	return string(out), nil
}

func upperHex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
