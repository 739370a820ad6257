package persist

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"
)

// Defaults of a ZooKeeper server: jute.maxbuffer bounds every request,
// response and znode.
const (
	DefaultZKMaxRequestBytes = 0xfffff
	// DefaultZKMaxMultiBytes is the default size of one multi. ZooKeeper
	// keeps its last 500 transactions in memory (zookeeper.commitLogCount,
	// which it does not let go lower), so large multis cost server heap:
	// 500 multis of 128 KiB take about 160 MB of it.
	DefaultZKMaxMultiBytes = 128 << 10
	// zkMaxOps keeps one multi to a size the server processes promptly.
	zkMaxOps = 4096
	// zkReadWorkers is how many reads Load keeps in flight on the one
	// connection (the client pipelines them; 64 reads shards about twice
	// as fast as 16).
	zkReadWorkers = 64
)

// ZKOptions configures a ZKStore.
type ZKOptions struct {
	// Prefix is the root of every framework's store; DefaultPrefix if empty.
	Prefix string
	// Framework names the framework; required, and one path component (no
	// '/'). The store lives under <Prefix>/<Framework>.
	Framework string
	// Logger receives the store's rare events; none if nil.
	Logger *zap.Logger
	// ACL is given to every znode the store creates; world:anyone with all
	// permissions if nil. For digest authentication use
	// zk.DigestACL(zk.PermAll, user, password) here and
	// conn.AddAuth("digest", []byte(user+":"+password)) on the connection.
	ACL []zk.ACL
	// MaxRequestBytes is the server's jute.maxbuffer;
	// DefaultZKMaxRequestBytes if 0. MaxMultiBytes must stay within three
	// quarters of it.
	MaxRequestBytes int
	// MaxMultiBytes is how many bytes one multi carries at most;
	// DefaultZKMaxMultiBytes if 0. Shards, log chunks and parts are kept
	// to about half of it, so that a commit's log entry and a shard rewrite
	// share one multi. Larger multis make large commits faster and Load
	// read fewer, larger shards, and cost the server heap (see
	// DefaultZKMaxMultiBytes).
	MaxMultiBytes int
	// MaxRecordBytes bounds one task record or entry;
	// DefaultMaxRecordBytes if 0.
	MaxRecordBytes int
}

var _ Store = (*ZKStore)(nil)

// ZKStore is a Store in ZooKeeper. Every write is a multi whose first op
// checks the leader's ephemeral znode; see doc.go for the layout. The zk
// client takes no context: ctx is checked between requests, and a request
// in flight ends with the server's answer or the connection (at most about
// the session timeout).
type ZKStore struct {
	conn     *zk.Conn
	root     string // "<prefix>/<framework>"
	acl      []zk.ACL
	aclBytes int
	// pk is the format 2 store; eng the format 1 engine, which reads format
	// 1 stores for their migration (and writes them in tests: format1).
	pk      *packer
	eng     *engine
	format1 bool

	// Guarded by eng.mu, like every backend call.
	missing []string        // directory znodes to create before the next write
	buckets map[string]bool // bucket znodes known to exist ("tasks/3f", "blobs/a0")
	fenceOK Fence           // the last fence whose czxid was verified

	stats *txnStats // what the multis write (tests); nil: not counted
}

// NewZooKeeper returns a store for one framework in ZooKeeper. It does no
// I/O. The connection stays the caller's: Close does not close it.
func NewZooKeeper(conn *zk.Conn, opts ZKOptions) (*ZKStore, error) {
	if conn == nil {
		return nil, errors.New("persist: NewZooKeeper: nil connection")
	}
	c, err := validateCommon(opts.Prefix, opts.Framework, opts.Logger, opts.MaxRecordBytes)
	if err != nil {
		return nil, err
	}
	if opts.MaxRequestBytes == 0 {
		opts.MaxRequestBytes = DefaultZKMaxRequestBytes
	}
	if opts.MaxMultiBytes == 0 {
		opts.MaxMultiBytes = min(DefaultZKMaxMultiBytes, opts.MaxRequestBytes/4*3)
	}
	if opts.MaxMultiBytes < minTxnBytes || opts.MaxMultiBytes > opts.MaxRequestBytes/4*3 {
		return nil, fmt.Errorf("persist: MaxMultiBytes %d must be within [%d, %d] (three quarters of MaxRequestBytes)",
			opts.MaxMultiBytes, minTxnBytes, opts.MaxRequestBytes/4*3)
	}
	acl := opts.ACL
	if acl == nil {
		acl = zk.WorldACL(zk.PermAll)
	}
	if len(acl) == 0 {
		return nil, errors.New("persist: empty ACL")
	}
	s := &ZKStore{conn: conn, root: c.prefix + "/" + c.framework, acl: acl}
	for _, a := range acl {
		s.aclBytes += len(a.Scheme) + len(a.ID) + 12
	}
	lim, err := txnLimits(zkMaxOps, opts.MaxMultiBytes, c.maxRecord, false)
	if err != nil {
		return nil, err
	}
	s.eng = &engine{
		framework: c.framework,
		lay:       layout{buckets: true},
		lim:       lim,
		be:        s,
		lg:        c.lg,
		format:    formatRecords,
		keepData:  true,
	}
	s.pk = newPacker(s, c, lim)
	return s, nil
}

// Framework returns the framework name the store was made for.
func (s *ZKStore) Framework() string { return s.eng.framework }

// Load syncs with the ZooKeeper leader and reads the framework's state,
// reading the manifest again at the end and retrying if it changed.
func (s *ZKStore) Load(ctx context.Context) (*Snapshot, error) {
	if s.format1 {
		return s.eng.load(ctx)
	}
	return s.pk.load(ctx)
}

// Commit applies b if fence still holds; see Store. The first commit to a
// store of an older format migrates it to format 4.
func (s *ZKStore) Commit(ctx context.Context, fence Fence, b Batch) (uint64, error) {
	if s.format1 {
		return s.eng.commit(ctx, fence, b)
	}
	return s.pk.commit(ctx, fence, b)
}

// Close makes later calls fail. It does not close the connection.
func (s *ZKStore) Close() error {
	s.pk.close()
	s.eng.close()
	return nil
}

func (s *ZKStore) path(rel string) string { return s.root + "/" + rel }

func (s *ZKStore) forget() {
	s.fenceOK = Fence{}
	s.buckets = nil
	s.missing = nil
}

func (s *ZKStore) cost(p *pop) int {
	c := len(s.root) + 1 + len(p.rel) + len(p.value) + s.aclBytes + 32
	if !p.del && !p.exists {
		// exec creates a missing bucket in the same multi (counted for
		// every create into it, which errs on the safe side).
		if b := bucketDir(p.rel); b != "" && !s.buckets[b] {
			c += len(s.root) + 1 + len(b) + s.aclBytes + 32
		}
	}
	return c
}

// layoutDirs lists the directory znodes of format 1. Bucket znodes are
// created with the first record that needs them.
func layoutDirs() []string {
	return []string{tasksDir, entriesDir, blobsDir, journalDir}
}

// read syncs, reads the manifest, lists the tree and reads every record:
// the format 1 layout.
func (s *ZKStore) read(ctx context.Context) (*rawRead, error) {
	raw, err := s.readManifest()
	if err != nil {
		return nil, err
	}
	s.missing = nil
	s.buckets = map[string]bool{}
	present, err := s.listTop(raw)
	if err != nil || present == nil || len(raw.foreign) > 0 {
		return raw, err
	}
	if err := s.listRecords(ctx, raw, present); err != nil {
		return nil, err
	}
	if err := s.listBlobsAndJournal(raw, present); err != nil {
		return nil, err
	}
	if len(raw.foreign) > 0 {
		return raw, nil
	}
	rels := make([]string, len(raw.records))
	for i := range raw.records {
		rels[i] = raw.records[i].rel
	}
	vals, err := s.fetch(ctx, rels)
	if err != nil {
		return nil, err
	}
	for i := range raw.records {
		if vals[i] == nil {
			return nil, fmt.Errorf("%s: %w", s.path(rels[i]), errVanished)
		}
		raw.records[i].value = vals[i]
	}
	return raw, nil
}

// listTop lists the root and returns which directories exist (nil when
// the root does not), noting foreign children in raw and missing
// directories in s.missing.
func (s *ZKStore) listTop(raw *rawRead) (map[string]bool, error) {
	top, _, err := s.conn.Children(s.root)
	if errors.Is(err, zk.ErrNoNode) {
		if raw.hasMan {
			return nil, fmt.Errorf("%s: %w", s.root, errVanished)
		}
		if err := s.findMissingAncestors(); err != nil {
			return nil, err
		}
		s.missing = append(s.missing, layoutDirs()...)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("persist: load: list %s: %w", s.root, err)
	}
	present := map[string]bool{}
	for _, name := range top {
		switch pi := s.eng.lay.parse(name); pi.class {
		case classDir:
			present[name] = true
		case classManifest, classLeader:
		default:
			if name == shardsDir || name == logDir {
				// An interrupted migration's: the migration deletes it.
				raw.stray = append(raw.stray, name)
				continue
			}
			raw.foreign = append(raw.foreign, name)
		}
	}
	for _, dir := range layoutDirs() {
		if !present[dir] {
			s.missing = append(s.missing, dir)
		}
	}
	return present, nil
}

// listRecords lists the buckets of tasks and entries, then every bucket in
// parallel, into raw.records (without values).
func (s *ZKStore) listRecords(ctx context.Context, raw *rawRead, present map[string]bool) error {
	var bucketDirs []string
	for _, dir := range []string{tasksDir, entriesDir} {
		if !present[dir] {
			continue
		}
		names, _, err := s.conn.Children(s.path(dir))
		if err != nil {
			return s.listErr(dir, err)
		}
		for _, b := range names {
			if !validBucket(b) {
				raw.foreign = append(raw.foreign, dir+"/"+b)
				continue
			}
			bucketDirs = append(bucketDirs, dir+"/"+b)
			s.buckets[dir+"/"+b] = true
		}
	}
	lists, err := s.parallel(ctx, bucketDirs, func(p string) ([]byte, []string, error) {
		names, _, err := s.conn.Children(p)
		return nil, names, err
	})
	if err != nil {
		return err
	}
	for i, dir := range bucketDirs {
		if lists[i].err != nil {
			return s.listErr(dir, lists[i].err)
		}
		for _, name := range lists[i].names {
			rel := dir + "/" + name
			if pi := s.eng.lay.parse(rel); pi.class == classRecord {
				raw.records = append(raw.records, rawRecord{rel: rel, rec: pi.rec})
			} else {
				raw.foreign = append(raw.foreign, rel)
			}
		}
	}
	return nil
}

// listBlobsAndJournal lists parts and journal chunks into raw.
func (s *ZKStore) listBlobsAndJournal(raw *rawRead, present map[string]bool) error {
	for _, dir := range []string{blobsDir, journalDir} {
		if !present[dir] {
			continue
		}
		names, _, err := s.conn.Children(s.path(dir))
		if err != nil {
			return s.listErr(dir, err)
		}
		for _, name := range names {
			rel := dir + "/" + name
			switch pi := s.eng.lay.parse(rel); {
			case pi.class == classPart:
				raw.parts = append(raw.parts, rawPart{rel: rel, rec: pi.rec, id: partID{gen: pi.gen, n: pi.n}})
			case pi.class == classJournal:
				raw.journal = append(raw.journal, rawJournal{rel: rel, gen: pi.gen, n: pi.n})
			case dir == blobsDir && validBucket(name):
				// A bucket of format 4 parts that an interrupted migration
				// left: the migration deletes what it holds.
				raw.stray = append(raw.stray, rel)
				s.buckets[rel] = true
			default:
				raw.foreign = append(raw.foreign, rel)
			}
		}
	}
	return nil
}

func (s *ZKStore) listErr(rel string, err error) error {
	if errors.Is(err, zk.ErrNoNode) {
		return fmt.Errorf("%s: %w", s.path(rel), errVanished)
	}
	return fmt.Errorf("persist: load: list %s: %w", s.path(rel), err)
}

// findMissingAncestors adds the missing ancestors of the root, and the
// root, to s.missing (as relative paths of the form "../..").
func (s *ZKStore) findMissingAncestors() error {
	var chain []string
	for p := s.root; p != "/"; p = path.Dir(p) {
		chain = append([]string{p}, chain...)
	}
	for _, p := range chain {
		ok, _, err := s.conn.Exists(p)
		if err != nil {
			return fmt.Errorf("persist: load: exists %s: %w", p, err)
		}
		if !ok {
			s.missing = append(s.missing, absMarker+p)
		}
	}
	return nil
}

// absMarker marks an absolute path in s.missing.
const absMarker = "\x00"

type readResult struct {
	data  []byte
	names []string
	err   error
}

// parallel runs fn over paths relative to the root with zkReadWorkers
// requests in flight, and waits for all of them.
func (s *ZKStore) parallel(ctx context.Context, rels []string, fn func(string) ([]byte, []string, error)) ([]readResult, error) {
	out := make([]readResult, len(rels))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < min(zkReadWorkers, len(rels)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(rels) || ctx.Err() != nil {
					return
				}
				d, n, err := fn(s.path(rels[i]))
				out[i] = readResult{data: d, names: n, err: err}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// fetch reads values; a missing znode yields nil.
func (s *ZKStore) fetch(ctx context.Context, rels []string) ([][]byte, error) {
	res, err := s.parallel(ctx, rels, func(p string) ([]byte, []string, error) {
		d, _, err := s.conn.Get(p)
		if d == nil && err == nil {
			d = []byte{}
		}
		return d, nil, err
	})
	if err != nil {
		return nil, err
	}
	vals := make([][]byte, len(rels))
	for i, r := range res {
		if r.err != nil {
			if errors.Is(r.err, zk.ErrNoNode) {
				continue
			}
			return nil, fmt.Errorf("persist: load: read %s: %w", s.path(rels[i]), r.err)
		}
		vals[i] = r.data
	}
	return vals, nil
}

// stable reports whether the manifest is still the one raw read.
func (s *ZKStore) stable(_ context.Context, raw *rawRead) (bool, error) {
	ok, st, err := s.conn.Exists(s.path(manifestName))
	if err != nil {
		return false, fmt.Errorf("persist: load: exists %s: %w", s.path(manifestName), err)
	}
	if !ok {
		return !raw.hasMan, nil
	}
	return raw.hasMan && st.Mzxid == raw.zkManZxid, nil
}

// prepare verifies the fence's czxid once per fence, and creates missing
// directory znodes in fenced multis.
func (s *ZKStore) prepare(ctx context.Context, fence Fence) error {
	if fence != s.fenceOK {
		ok, st, err := s.conn.Exists(fence.Key)
		if err != nil {
			return fmt.Errorf("persist: check fence %s: %w", fence.Key, err)
		}
		if !ok || st.Czxid != fence.Revision {
			return fmt.Errorf("persist: fence %s (czxid %d) no longer exists: %w", fence.Key, fence.Revision, ErrFenced)
		}
		if st.Version != 0 {
			return fmt.Errorf("persist: fence %s (czxid %d) was modified (data version %d), not a candidate's znode: %w",
				fence.Key, fence.Revision, st.Version, ErrFenced)
		}
		s.fenceOK = fence
	}
	if len(s.missing) == 0 {
		return nil
	}
	pops := make([]pop, len(s.missing))
	for i, rel := range s.missing {
		pops[i] = pop{rel: rel}
	}
	for i, g := range s.eng.pack("layout", pops, 0) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.exec(ctx, fence, g, &view{manVer: -1}); err != nil {
			return fmt.Errorf("persist: create the store's znodes (multi %d): %w", i+1, err)
		}
	}
	s.eng.lg.Info("persist: created the store's znodes", zap.String("root", s.root), zap.Int("znodes", len(s.missing)))
	s.missing = nil
	return nil
}

func (s *ZKStore) abs(rel string) string {
	if strings.HasPrefix(rel, absMarker) {
		return rel[len(absMarker):]
	}
	return s.path(rel)
}

// exec runs g as one multi: Check(fence, version 0), then the manifest
// write or a Check of its version, then g's writes. The fence's znode is
// never modified after its creation (see Fence), so its data version is
// 0 for as long as it exists.
func (s *ZKStore) exec(_ context.Context, fence Fence, g *group, v *view) error {
	manPath := s.path(manifestName)
	ops := make([]any, 0, len(g.pops)+2)
	ops = append(ops, &zk.CheckVersionRequest{Path: fence.Key, Version: 0})
	manIdx := -1
	switch {
	case g.manifest != nil && v.manVer < 0:
		manIdx = len(ops)
		ops = append(ops, &zk.CreateRequest{Path: manPath, Data: g.manifest, Acl: s.acl})
	case g.manifest != nil:
		manIdx = len(ops)
		ops = append(ops, &zk.SetDataRequest{Path: manPath, Data: g.manifest, Version: int32(v.manVer)})
	case v.manVer >= 0:
		manIdx = len(ops)
		ops = append(ops, &zk.CheckVersionRequest{Path: manPath, Version: int32(v.manVer)})
	}
	// opPop maps each op to the pop it writes (-1: a bucket znode).
	opPop := make([]int, len(ops), len(ops)+len(g.pops))
	for i := range opPop {
		opPop[i] = -1
	}
	var newBuckets []string
	for i := range g.pops {
		p := &g.pops[i]
		full := s.abs(p.rel)
		switch {
		case p.del:
			ops = append(ops, &zk.DeleteRequest{Path: full, Version: -1})
		case p.exists:
			ops = append(ops, &zk.SetDataRequest{Path: full, Data: p.value, Version: -1})
		default:
			if b := bucketDir(p.rel); b != "" && !s.buckets[b] && !slices.Contains(newBuckets, b) {
				newBuckets = append(newBuckets, b)
				ops = append(ops, &zk.CreateRequest{Path: s.path(b), Acl: s.acl})
				opPop = append(opPop, -1)
			}
			ops = append(ops, &zk.CreateRequest{Path: full, Data: p.value, Acl: s.acl})
		}
		opPop = append(opPop, i)
	}
	s.stats.multi(ops)
	res, err := s.conn.Multi(ops...)
	if err != nil {
		if len(res) != len(ops) {
			return fmt.Errorf("zookeeper multi (%s, %d ops): %w", g.phase, len(ops), err)
		}
		i := 0
		for i < len(res) && res[i].Error == nil {
			i++
		}
		switch {
		case i == 0 && errors.Is(res[0].Error, zk.ErrNoNode):
			return fmt.Errorf("fence %s no longer exists: %w", fence.Key, ErrFenced)
		case i == 0 && errors.Is(res[0].Error, zk.ErrBadVersion):
			return fmt.Errorf("fence %s was modified, not a candidate's znode: %w", fence.Key, ErrFenced)
		case i == manIdx && (errors.Is(res[i].Error, zk.ErrBadVersion) || errors.Is(res[i].Error, zk.ErrNoNode) || errors.Is(res[i].Error, zk.ErrNodeExists)):
			return fmt.Errorf("manifest %s not at version %d: %w", manPath, v.manVer, errStale)
		case i < len(res) && opPop[i] < 0:
			return fmt.Errorf("zookeeper multi (%s): %v: %w (%w)", g.phase, ops[i], res[i].Error, errStale)
		case i < len(res):
			p := &g.pops[opPop[i]]
			err := res[i].Error
			if errors.Is(err, zk.ErrNoNode) || errors.Is(err, zk.ErrNodeExists) {
				// The store is not as this replica last saw it.
				return fmt.Errorf("zookeeper multi (%s): %s %s: %w (%w)", g.phase, popVerb(p), s.abs(p.rel), err, errStale)
			}
			return fmt.Errorf("zookeeper multi (%s): %s %s: %w", g.phase, popVerb(p), s.abs(p.rel), err)
		}
		return fmt.Errorf("zookeeper multi (%s): %w", g.phase, err)
	}
	if s.buckets == nil {
		s.buckets = map[string]bool{}
	}
	for _, b := range newBuckets {
		s.buckets[b] = true
	}
	if g.manifest != nil {
		if v.manVer < 0 {
			v.manVer = 0
		} else if st := res[manIdx].Stat; st != nil {
			v.manVer = int64(st.Version)
		}
	}
	return nil
}

// multi counts one multi: its ops, and the bytes of their paths and data.
func (c *txnStats) multi(ops []any) {
	if c == nil {
		return
	}
	bytes := 0
	for _, op := range ops {
		switch r := op.(type) {
		case *zk.CheckVersionRequest:
			bytes += len(r.Path)
		case *zk.CreateRequest:
			bytes += len(r.Path) + len(r.Data)
		case *zk.SetDataRequest:
			bytes += len(r.Path) + len(r.Data)
		case *zk.DeleteRequest:
			bytes += len(r.Path)
		}
	}
	c.add(len(ops), bytes)
}

// bucketDir returns the bucket directory of a path in one ("tasks/3f",
// "entries/3f" in format 1, "blobs/3f" in format 4), or "".
func bucketDir(rel string) string {
	dir, rest, ok := strings.Cut(rel, "/")
	if !ok || (dir != tasksDir && dir != entriesDir && dir != blobsDir) {
		return ""
	}
	b, _, ok := strings.Cut(rest, "/")
	if !ok {
		return ""
	}
	return dir + "/" + b
}

func popVerb(p *pop) string {
	switch {
	case p.del:
		return "delete"
	case p.exists:
		return "set"
	}
	return "create"
}
