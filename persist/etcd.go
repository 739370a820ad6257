package persist

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Defaults of an etcd server (--max-txn-ops, --max-request-bytes).
const (
	DefaultEtcdMaxTxnOps       = 128
	DefaultEtcdMaxRequestBytes = 1536 << 10
	// etcdPageSize is how many keys one range request of Load returns.
	etcdPageSize = 5000
)

// EtcdOptions configures an EtcdStore.
type EtcdOptions struct {
	// Prefix is the root of every framework's store; DefaultPrefix if empty.
	Prefix string
	// Framework names the framework; required, and one path component (no
	// '/'). The store lives under <Prefix>/<Framework>/.
	Framework string
	// Logger receives the store's rare events (journaled commits that had
	// to be finished, garbage deleted); none if nil.
	Logger *zap.Logger
	// MaxTxnOps is the server's --max-txn-ops; DefaultEtcdMaxTxnOps if 0.
	MaxTxnOps int
	// MaxRequestBytes is the server's --max-request-bytes;
	// DefaultEtcdMaxRequestBytes if 0. The store keeps its transactions
	// to three quarters of it.
	MaxRequestBytes int
	// MaxRecordBytes bounds one task record or entry;
	// DefaultMaxRecordBytes if 0.
	MaxRecordBytes int
}

var _ Store = (*EtcdStore)(nil)

// EtcdStore is a Store in etcd. Every write is a Txn fenced by the
// leader's election key; see doc.go for the layout.
type EtcdStore struct {
	cli   *clientv3.Client
	root  string // "<prefix>/<framework>/"
	eng   *engine
	stats *txnStats // what the Txns write (tests); nil: not counted
}

// NewEtcd returns a store for one framework in etcd. It does no I/O; TLS
// and authentication are the client's configuration. The client stays the
// caller's: Close does not close it.
func NewEtcd(client *clientv3.Client, opts EtcdOptions) (*EtcdStore, error) {
	if client == nil {
		return nil, errors.New("persist: NewEtcd: nil client")
	}
	c, err := validateCommon(opts.Prefix, opts.Framework, opts.Logger, opts.MaxRecordBytes)
	if err != nil {
		return nil, err
	}
	if opts.MaxTxnOps == 0 {
		opts.MaxTxnOps = DefaultEtcdMaxTxnOps
	}
	if opts.MaxRequestBytes == 0 {
		opts.MaxRequestBytes = DefaultEtcdMaxRequestBytes
	}
	if opts.MaxTxnOps < 4 {
		return nil, fmt.Errorf("persist: MaxTxnOps %d is below 4", opts.MaxTxnOps)
	}
	budget := opts.MaxRequestBytes / 4 * 3
	if budget < minTxnBytes {
		return nil, fmt.Errorf("persist: MaxRequestBytes %d is too small", opts.MaxRequestBytes)
	}
	lim, err := txnLimits(opts.MaxTxnOps, budget, c.maxRecord, true)
	if err != nil {
		return nil, err
	}
	s := &EtcdStore{cli: client, root: c.prefix + "/" + c.framework + "/"}
	s.eng = &engine{
		framework: c.framework,
		lay:       layout{},
		lim:       lim,
		be:        s,
		lg:        c.lg,
		format:    formatWriter,
	}
	return s, nil
}

// Framework returns the framework name the store was made for.
func (s *EtcdStore) Framework() string { return s.eng.framework }

// Load reads the framework's state at one etcd revision, in pages.
func (s *EtcdStore) Load(ctx context.Context) (*Snapshot, error) { return s.eng.load(ctx) }

// Commit applies b if fence still holds; see Store.
func (s *EtcdStore) Commit(ctx context.Context, fence Fence, b Batch) (uint64, error) {
	return s.eng.commit(ctx, fence, b)
}

// Close makes later calls fail. It does not close the client.
func (s *EtcdStore) Close() error {
	s.eng.close()
	return nil
}

func (s *EtcdStore) path(rel string) string { return s.root + rel }

func (s *EtcdStore) read(ctx context.Context) (*rawRead, error) {
	end := clientv3.GetPrefixRangeEnd(s.root)
	raw := &rawRead{}
	vals := map[string][]byte{}
	key := s.root
	var rev int64
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(etcdPageSize)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := s.cli.Get(ctx, key, opts...)
		if err != nil {
			if errors.Is(err, rpctypes.ErrCompacted) {
				return nil, fmt.Errorf("revision %d compacted while reading: %w", rev, errVanished)
			}
			return nil, fmt.Errorf("persist: load: read %s: %w", s.root, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
			raw.records = make([]rawRecord, 0, resp.Count)
		}
		for _, kv := range resp.Kvs {
			rel := string(kv.Key[len(s.root):])
			pi := s.eng.lay.parse(rel)
			switch pi.class {
			case classManifest:
				raw.hasMan, raw.manifest, raw.manVer = true, kv.Value, kv.ModRevision
			case classRecord:
				raw.records = append(raw.records, rawRecord{rel: rel, rec: pi.rec, value: kv.Value})
			case classPart:
				raw.parts = append(raw.parts, rawPart{rel: rel, rec: pi.rec, id: partID{gen: pi.gen, n: pi.n}})
				vals[rel] = kv.Value
			case classJournal:
				raw.journal = append(raw.journal, rawJournal{rel: rel, gen: pi.gen, n: pi.n})
				vals[rel] = kv.Value
			case classLeader:
			default:
				raw.foreign = append(raw.foreign, rel)
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	raw.fetch = func(_ context.Context, rels []string) ([][]byte, error) {
		out := make([][]byte, len(rels))
		for i, rel := range rels {
			out[i] = vals[rel]
		}
		return out, nil
	}
	return raw, nil
}

// stable: a read at one revision is consistent by construction.
func (s *EtcdStore) stable(context.Context, *rawRead) (bool, error) { return true, nil }

func (s *EtcdStore) prepare(context.Context, Fence) error { return nil }

func (s *EtcdStore) forget() {}

func (s *EtcdStore) cost(p *pop) int { return len(s.root) + len(p.rel) + len(p.value) + 24 }

// exec runs g as one Txn: If(the fence key's CreateRevision is the
// fence's, and the manifest is as last seen) Then(g's writes).
func (s *EtcdStore) exec(ctx context.Context, fence Fence, g *group, v *view) error {
	manKey := s.root + manifestName
	ops := make([]clientv3.Op, 0, len(g.pops)+1)
	for i := range g.pops {
		p := &g.pops[i]
		switch {
		case p.prefix:
			ops = append(ops, clientv3.OpDelete(s.root+p.rel, clientv3.WithPrefix()))
		case p.del:
			ops = append(ops, clientv3.OpDelete(s.root+p.rel))
		default:
			ops = append(ops, clientv3.OpPut(s.root+p.rel, string(p.value)))
		}
	}
	if g.manifest != nil {
		ops = append(ops, clientv3.OpPut(manKey, string(g.manifest)))
	}
	if s.stats != nil {
		bytes := len(fence.Key) + len(manKey)
		for i := range ops {
			bytes += len(ops[i].KeyBytes()) + len(ops[i].ValueBytes())
		}
		s.stats.add(len(ops)+2, bytes)
	}
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(fence.Key), "=", fence.Revision),
			clientv3.Compare(clientv3.ModRevision(manKey), "=", v.manVer)).
		Then(ops...).
		Else(clientv3.OpGet(fence.Key, clientv3.WithKeysOnly()), clientv3.OpGet(manKey, clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return fmt.Errorf("etcd txn (%s, %d ops): %w", g.phase, len(ops), err)
	}
	if !resp.Succeeded {
		if kvs := resp.Responses[0].GetResponseRange().GetKvs(); len(kvs) == 0 || kvs[0].CreateRevision != fence.Revision {
			return fmt.Errorf("fence %s (create revision %d) no longer holds: %w", fence.Key, fence.Revision, ErrFenced)
		}
		var now int64
		if kvs := resp.Responses[1].GetResponseRange().GetKvs(); len(kvs) > 0 {
			now = kvs[0].ModRevision
		}
		return fmt.Errorf("manifest %s at revision %d, this replica last saw %d: %w", manKey, now, v.manVer, errStale)
	}
	if g.manifest != nil {
		v.manVer = resp.Header.Revision
	}
	return nil
}
