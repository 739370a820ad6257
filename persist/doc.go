// Package persist is the durable state of one framework: a Store loads it
// and commits changes to it, in etcd (NewEtcd), ZooKeeper (NewZooKeeper)
// or memory (NewMemory, for core's unit tests only). Every commit is fenced
// by the writer's leadership, so a deposed leader can write nothing, and is
// atomic, so a new leader finds exactly what the old one committed.
//
// # Data path
//
// core hands Commit a Batch: every change since its last commit (task
// records and framework entries to put or delete, maybe a new
// FrameworkID). The store turns it into writes whose size grows with the
// batch, not with the state, and runs them as fenced transactions:
//
//   - etcd: a Txn If(CreateRevision(fence.Key) == fence.Revision, and the
//     manifest's ModRevision is the one this store last saw) Then(writes).
//     A failed fence compare is ErrFenced; nothing was written.
//   - ZooKeeper: a multi whose first op is Check(fence.Key, 0), the
//     leader's ephemeral sequential znode at data version 0 (its czxid is
//     checked against fence.Revision the first time a fence is used; ha
//     never modifies a candidate's znode, see Fence), then a versioned set
//     (or check) of the manifest, then the writes.
//   - memory: the fence must equal the one set by MemoryStore.SetLeader.
//
// The manifest guard means a replica that did not Load in its current term
// cannot write over a newer store: its commit fails (without ErrFenced) and
// it must reload. Losing the fence before a commit's commit point is
// ErrFenced with nothing visible; after it, the commit is durable and
// Commit reports success (the writer's next commit will be fenced).
//
// Load verifies every value's checksum and the manifest's record counts
// and digest (an XOR of per-record hashes, which catches a record lost,
// resurrected, or replaced by an older version). It refuses a corrupt
// store (ErrCorrupt), another framework's (ErrForeign) or one written by a
// newer format (ErrNewerFormat), names the key or znode at fault, and
// writes nothing; Commit on a store it has not loaded loads first, and
// refuses the same way. A reader never sees part of a commit, whatever
// the crash point: each format has one transaction that is the commit
// point, and what is written before it is invisible, what after it changes
// nothing a reader sees.
//
// # etcd: one record per key (format 1)
//
// etcd reads a whole prefix at one revision in pages of 5,000 keys (100k
// tasks: 0.6 s), so each record is its own key. A batch that fits one Txn
// (128 ops and three quarters of the 1.5 MiB request limit by default) is
// one Txn. A larger one keeps its atomicity through a write-ahead journal:
//
//  1. stage: the parts of large records are written under names of the new
//     generation, which no record references yet (invisible);
//  2. journal: the logical ops are written in chunks to
//     journal/<generation>.<n> (large records as references to their
//     staged parts);
//  3. mark: one transaction sets the manifest to the new generation with
//     "applying <generation>, <n> chunks". This is the commit point;
//  4. apply: the records are written and deleted, in as many transactions
//     as needed;
//  5. clear: one transaction removes the mark (and deletes the journal).
//
// Load reads the manifest; when it carries a mark it reads the journal and
// replays it onto what it read. The next commit first finishes a marked
// journal, then deletes garbage: journal chunks without a mark and parts no
// record references, left by writers that died before their commit point.
//
// # ZooKeeper: shards and a log (format 2)
//
// ZooKeeper answers about 10,000 reads a second here however many a client
// pipelines, so one znode per task (format 1) made Load of 100k tasks take
// 10 s. Format 2 packs records into few, large znodes, and keeps commits
// incremental with a log:
//
//   - Shards. Records live in the leaves of a binary trie over a 64-bit
//     hash of their kind and key (shard.go): the leaf at depth d holds the
//     records whose hash starts with its d-bit prefix, in one znode of at
//     most about half a multi (60 KiB by default). The manifest holds the
//     trie's shape (one bit per node), so Load knows which shards must
//     exist. A shard's value says which generation it is current at.
//   - Log. A commit writes its ops, not the shards they touch, as the log
//     entry log/<generation>.<n> (usually one znode), in one multi with the
//     manifest: the commit point. Large entries first go through
//     "log" multis that nothing references yet.
//   - Compaction. The same commit then rewrites shards: the shard whose
//     unfolded changes are oldest first, for up to twice the bytes it
//     logged (more, a few shards at most, while the log is longer than 512
//     entries or than the shards plus 4 MiB). A rewrite folds the shard's
//     changes in, splits it when it outgrows the shard size, merges it with
//     a small sibling, and is invisible to readers (the merged state is the
//     same); log entries no shard needs any more are deleted. Usually the
//     first rewrite rides in the commit's own multi.
//
// Load reads the manifest, lists shards/, log/ and blobs/ (and blobs/'s
// buckets, format 4), reads every shard and every log entry of (logFrom,
// generation] with 64 requests in flight, and applies each log op whose generation is newer than its
// record's shard. For 100k tasks that is about 320 shards and a few dozen
// log entries, 20 MB, in 0.3 to 0.4 s (docs/BENCHMARKS.md). A commit costs its
// log entry plus about twice that in shard rewrites, each bounded by one
// shard: it grows with the batch, not with the state, and a group commit
// of 100 updates is one multi of about 70 KB instead of 100 setData ops.
//
// Why this layout. The alternatives measured or considered: shards
// rewritten in place by every commit (a 100-update batch touches about 100
// shards: 50 to 100 times the bytes); a full checkpoint rewritten every so
// often (a stall of the state's size, seconds at 100k tasks); a
// log-structured store whose cleaner moves live records between segments
// (as cheap to write, but a deleted record needs a tombstone until every
// older copy is gone, which needs per-key bookkeeping of copies). Hash
// shards plus a log need no tombstones: a log op applies only when it is
// newer than its record's shard, and an entry is deleted only when no shard
// still misses one of its ops. The price is a second copy of recent
// changes (Load reads about 1.1 to 1.5 times the state) and writing about
// three bytes per byte changed, which ZooKeeper handles well: it is per-op
// bound (a multi of one 20 KB create takes 1 ms, one of 100 setData 4 ms).
//
// Crash points: stage and log multis, and the shards of a split written
// ahead of the multi that changes the trie, are garbage that the next
// commit deletes before it writes (Load ignores them: names outside the
// trie, log entries outside (logFrom, generation], parts no live record
// references). Every multi after the commit point sets the manifest, so a
// crash between two of them leaves a consistent store.
//
// The leader keeps what it needs to rewrite shards: each shard's value as
// read or written, and the changes it has not folded in yet (about the size
// of the state). Snapshot values share that memory; a caller that modifies
// them is caught by the checksums before anything is written, and the next
// commit reads the store again.
//
// Migration. A format 1 ZooKeeper store loads as before (Snapshot.Format
// 1) and is migrated by the first commit after that successful Load: the
// state as read is written into new shards (invisible to format 1, which
// has no shards), its parts are copied to their format 4 names (below),
// then the commit's multi replaces the format 1 manifest by a packed one
// (format 4 now; the commit point), then the format 1 records, buckets,
// journal and parts are deleted, eight multis per commit (Load ignores
// them; a later leader's Load finds what is left and goes on). A format 1
// store with an interrupted journaled commit migrates with the journal
// applied. A binary that knows only format 1 refuses the migrated store
// (ErrNewerFormat) and leaves it untouched; during a migration it refuses
// the new shards/ directory (ErrForeign).
//
// # Format 3: the writer's fence in the manifest
//
// etcd writes format 3, and ZooKeeper did before format 4: the layout of
// format 1 (etcd) or 2 (ZooKeeper), whose manifest also says which layout
// it is and carries the fence of the term that wrote it (Snapshot.Writer).
// Every commit writes the manifest, so each generation names its leader,
// and a drill can check every commit against the election's history
// (integration/drill). Only the manifest changed. A store of format 1
// (etcd) or 2 (ZooKeeper) loads as it is, with no writer, and its first
// commit writes a format 3 manifest: that is the whole migration. A
// binary of the format before refuses the store from then on
// (ErrNewerFormat) and leaves it untouched: an old `regent run` that wins
// an election after a new one committed gives the term up and exits with
// status 2 (it must be upgraded), and the next candidate takes over.
//
// # ZooKeeper format 4: parts named by hash, in buckets
//
// Formats 1 to 3 name the parts of a large record blobs/<t|e>.<escaped
// key>.<gen>.<n>, all in one directory. A key may have 1,024 bytes, three
// times that escaped, and a record of 64 MiB is about 1,100 parts: one
// listing of blobs/ could exceed ZooKeeper's 1 MiB response limit
// (jute.maxbuffer), and a Load that cannot list blobs/ cannot read the
// store. Format 4 changes only the names of parts:
//
//	blobs/<bucket>/<hash>.<gen>.<n>
//
// hash is the first 128 bits of SHA-256 over the record's kind and key
// (32 hex digits), bucket is (hash's first byte + n) mod 256 in two hex
// digits: a record's parts go round the 256 buckets from a place its hash
// chooses, and the records spread over them. A part's value is unchanged
// and still carries its record's kind and key, so a part found under
// another record's hash is detected (ErrCorrupt). Buckets are created with
// the first part that needs them and kept.
//
// The bound. blobs/ lists at most 256 buckets: 1.5 KB with ZooKeeper's
// 4-byte length per name. A name in a bucket has at most 59 bytes (63 in
// a listing) whatever the key; a record of n parts puts at most
// ceil(n/256) of them in one bucket, so with P parts in all a bucket lists
// about P/256 names (at most P/256 + R, R the records in parts, if their
// hashes all chose the same bucket). Parts hold 60 KiB each by default
// (12 KiB with the smallest MaxMultiBytes): a 64 MiB record lists 5 names
// per bucket, under 300 bytes; 4 GiB of records in parts, at the smallest
// part size, about 1,400 names and at most 86 KB per bucket. A bucket's
// listing reaches 1 MiB at 16,600 names: about 4 million parts, 250 GiB of
// records by default, far beyond what a ZooKeeper (which keeps its data in
// memory) holds; even records whose keys all chose one bucket would need
// 16,600 of them, about 1 GiB by default (200 MB with the smallest
// multis). (shards/ and log/ names have at most 13 and 31 bytes: a listing
// of either nears 1 MiB only past 30,000 shards or log chunks, gigabytes
// of state.) TestZooKeeper/BlobListing checks the bound on records with
// the longest keys.
//
// Migration. A ZooKeeper store of format 1, 2 or 3 loads as it is, its
// parts read under their old names. The first commit after that Load
// copies, before its commit point, every part of a live record to its
// format 4 name (byte for byte, in multis that check the manifest's
// version; nothing references the copies yet), then commits as usual,
// writing a format 4 manifest (the commit point); the old names are then
// deleted, eight multis per commit. A crash before the commit point leaves
// the copies as garbage that the next commit deletes before it copies
// again; no part is lost, since the old names go only after a format 4
// manifest names the new ones. A binary of format 3 refuses a format 4
// store (ErrNewerFormat) and leaves it untouched; between a migration's
// first copy and its commit point (a crash there) it refuses blobs/'s
// buckets (ErrForeign), as format 1 binaries refused shards/, until a
// format 4 binary commits. etcd has no such limit (Load reads keys in
// pages) and keeps writing format 3.
//
// # Persisted layout
//
// Under <prefix>/<framework>/ (prefix "/regent" by default):
//
//	manifest                         format, layout, framework name,
//	                                 generation, FrameworkID, task and
//	                                 entry counts, digest; etcd: journal
//	                                 mark; ZooKeeper: log start, shard
//	                                 trie; the writer's fence
//	tasks/<id>                       etcd: one task record per key
//	entries/<key>                    etcd: the framework's entries
//	journal/<gen>.<n>                etcd: write-ahead journal chunks
//	shards/<depth>.<prefix>          ZooKeeper: the records of one shard
//	log/<gen>.<n>                    ZooKeeper: the ops of commit <gen>
//	blobs/<t|e>.<key>.<gen>.<n>      etcd, and ZooKeeper before format 4:
//	                                 parts of records larger than half a
//	                                 transaction
//	blobs/<bucket>/<hash>.<gen>.<n>  ZooKeeper format 4: the same parts
//	leader/...                       ha's election keys; persist never
//	                                 reads or writes them
//
// (ZooKeeper's format 1 had tasks/<bucket>/<id>, entries/<bucket>/<key>
// with 256 buckets by hash, and journal/.) Ids and keys are escaped to one
// path component: bytes outside [A-Za-z0-9._:-], and a leading '.', become
// %XX. Any other key below the root makes Load fail with ErrForeign.
//
// Every value starts with a 12-byte header: magic "RGNT", the format that
// introduced its encoding (the manifest: 3; parts, records and journal
// chunks: 1; shards and log chunks: 2), value type, two reserved bytes,
// and the CRC-32C of the payload. (The manifest of format 4 is format 3's
// with 4 in its header.) Payloads use unsigned varints and length-prefixed
// strings; records, shards and parts carry their own key or hash prefix,
// so a value copied to another name is detected. etcd reads formats 1 and
// 3 and writes 3; ZooKeeper reads formats 1 to 4 and writes 4. Records up
// to MaxRecordBytes (64 MiB by default; larger ones are refused with
// ErrTooLarge) are split into parts when they do not fit half a
// transaction.
//
// Export and Import move a snapshot to and from JSON, for backups and for
// moving a framework between stores.
package persist
