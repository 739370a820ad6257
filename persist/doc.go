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
// FrameworkID). The store turns it into writes of only the changed keys
// plus the manifest, and runs them as fenced transactions:
//
//   - etcd: a Txn If(CreateRevision(fence.Key) == fence.Revision, and the
//     manifest's ModRevision is the one this store last saw) Then(writes).
//     A failed fence compare is ErrFenced; nothing was written.
//   - ZooKeeper: a multi whose first op is Check(fence.Key, -1), the
//     leader's ephemeral sequential znode (its czxid is checked against
//     fence.Revision the first time a fence is used), then a versioned set
//     (or check) of the manifest, then the writes.
//   - memory: the fence must equal the one set by MemoryStore.SetLeader.
//
// The manifest guard means a replica that did not Load in its current term
// cannot write over a newer store: its commit fails (without ErrFenced) and
// it must reload.
//
// A batch that fits one transaction (etcd: 128 ops and three quarters of
// the 1.5 MiB request limit by default; ZooKeeper: 128 KiB per multi by
// default, see DefaultZKMaxMultiBytes) is one transaction, whose success
// is the commit. A larger one keeps its atomicity through a write-ahead
// journal:
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
// Every one of these transactions is fenced. Load reads the manifest; when
// it carries a mark it reads the journal and replays it onto what it read,
// so readers see all of a commit or none of it whatever the crash point.
// The next commit (of this leader or the next) first finishes a marked
// journal, then deletes garbage: journal chunks without a mark and parts no
// record references, left by writers that died before their commit point.
// Losing the fence before the commit point is ErrFenced with nothing
// visible; after it, the commit is durable and Commit reports success (the
// next commit of that writer will be fenced).
//
// Load is consistent: etcd reads everything at one revision, in pages;
// ZooKeeper syncs, reads the manifest, lists and reads the records, then
// checks the manifest again and reads again if a commit happened meanwhile
// (only the leader writes, so a new leader's load reads once). Load
// verifies every value's checksum and the manifest's record counts and
// digest (an XOR of per-record hashes, which catches a record lost,
// resurrected, or replaced by an older version). It refuses a corrupt
// store (ErrCorrupt), another framework's (ErrForeign) or one written by a
// newer format (ErrNewerFormat), names the key at fault, and writes
// nothing; Commit on a store it has not loaded loads first, and refuses
// the same way.
//
// # Persisted layout
//
// Under <prefix>/<framework>/ (prefix "/regent" by default):
//
//	manifest                         format, framework name, generation,
//	                                 FrameworkID, task and entry counts,
//	                                 digest, journal mark
//	tasks/<id>                       one task record per key (etcd)
//	tasks/<bucket>/<id>              one task record per znode (ZooKeeper;
//	                                 256 buckets by hash of the id, so that
//	                                 no child list outgrows jute.maxbuffer)
//	entries/[<bucket>/]<key>         the framework's entries, likewise
//	blobs/<t|e>.<key>.<gen>.<n>      parts of records larger than half a
//	                                 transaction
//	journal/<gen>.<n>                write-ahead journal chunks
//	leader/...                       ha's election keys; persist never
//	                                 reads or writes them
//
// Ids and keys are escaped to one path component: bytes outside
// [A-Za-z0-9._:-], and a leading '.', become %XX. Any other key below the
// root makes Load fail with ErrForeign.
//
// Every value starts with a 12-byte header: magic "RGNT", format version
// (1), value type, two reserved bytes, and the CRC-32C of the payload.
// Payloads use unsigned varints and length-prefixed strings; a record
// carries its own kind and key, so a value copied to another key is
// detected. Records up to MaxRecordBytes (64 MiB by default; larger ones
// are refused with ErrTooLarge) are split into parts when they do not fit
// half a transaction. A future format 2 is read by its own decoder and
// rewritten on the first commit after a successful Load (migrateView); a
// binary that only knows format 1 refuses a format 2 store untouched.
//
// Export and Import move a snapshot to and from JSON, for backups and for
// moving a framework between stores.
package persist
