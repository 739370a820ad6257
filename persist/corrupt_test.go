package persist

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

// corruptSetup commits a small store with a large (parted) entry; in
// ZooKeeper's format 2, with enough tasks for several shards.
func corruptSetup(t *testing.T, h *harness) (string, Fence, *model) {
	t.Helper()
	fw := uniqueFW(t.Name())
	s := h.newStore(t, testPrefix, fw)
	f := h.grant(t, testPrefix, fw)
	b := bigBatch("t", 10, 50)
	if h.layout == formatPacked {
		for k, v := range bigBatch("fill", 1500, 100).PutTasks {
			b.PutTasks[k] = v
		}
	}
	b.FrameworkID = strp("id")
	b.PutEntries = map[string][]byte{"big": value("big", 700<<10), "small": []byte("s")}
	m := newModel()
	mustCommit(t, s, f, b)
	m.apply(b)
	checkModel(t, s, m)
	return fw, f, m
}

// expectRefused checks that loading and committing fail with want, that
// both errors name every mention, and that the store is left
// byte-identical.
func expectRefused(t *testing.T, h *harness, fw string, f Fence, want error, mentions ...string) {
	t.Helper()
	before := h.raw.dump(t, testPrefix, fw)
	_, err := h.newStore(t, testPrefix, fw).Load(testCtx(t))
	if !errors.Is(err, want) {
		t.Fatalf("Load: %v, want %v", err, want)
	}
	for _, mention := range mentions {
		if !strings.Contains(err.Error(), mention) {
			t.Fatalf("Load error %q does not name %q", err, mention)
		}
	}
	t.Logf("Load refused the store: %v", err)
	_, err = h.newStore(t, testPrefix, fw).Commit(testCtx(t), f, Batch{PutTasks: map[string][]byte{"new": []byte("x")}})
	if !errors.Is(err, want) {
		t.Fatalf("Commit: %v, want %v", err, want)
	}
	for _, mention := range mentions {
		if !strings.Contains(err.Error(), mention) {
			t.Fatalf("Commit error %q does not name %q", err, mention)
		}
	}
	if after := h.raw.dump(t, testPrefix, fw); !maps.Equal(before, after) {
		t.Fatalf("a refused store was changed:\nbefore %d keys\nafter  %d keys", len(before), len(after))
	}
}

// corruptCase damages a store and says how Load must refuse it.
type corruptCase struct {
	name    string
	mutate  func(t *testing.T, fw string)
	want    error
	mention func(fw string) string
}

func testCorruption(t *testing.T, h *harness) {
	root := func(fw string) string { return testPrefix + "/" + fw + "/" }
	cases := []corruptCase{
		{
			name: "garbage manifest",
			mutate: func(t *testing.T, fw string) {
				h.raw.put(t, testPrefix, fw, manifestName, []byte("garbage, not a manifest"))
			},
			want:    ErrCorrupt,
			mention: func(fw string) string { return root(fw) + manifestName },
		},
		{
			name: "part of a large entry deleted",
			mutate: func(t *testing.T, fw string) {
				h.raw.del(t, testPrefix, fw, h.raw.part(recKey{kindEntry, "big"}, 1, 1))
			},
			want:    ErrCorrupt,
			mention: func(fw string) string { return root(fw) + h.raw.part(recKey{kindEntry, "big"}, 1, 1) },
		},
		{
			name: "manifest of another framework",
			mutate: func(t *testing.T, fw string) {
				ofw, _, _ := corruptSetup(t, h)
				h.raw.put(t, testPrefix, fw, manifestName, h.raw.get(t, testPrefix, ofw, manifestName))
			},
			want:    ErrForeign,
			mention: func(fw string) string { return root(fw) + manifestName },
		},
		{
			name:    "foreign key",
			mutate:  func(t *testing.T, fw string) { h.raw.put(t, testPrefix, fw, "junk", []byte("x")) },
			want:    ErrForeign,
			mention: func(fw string) string { return root(fw) + "junk" },
		},
	}
	if h.layout == formatPacked {
		cases = append(cases, packedCorruptCases(h)...)
	} else {
		cases = append(cases, recordCorruptCases(h)...)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fw, f, _ := corruptSetup(t, h)
			tc.mutate(t, fw)
			expectRefused(t, h, fw, f, tc.want, tc.mention(fw))
		})
	}
}

// recordCorruptCases damage records of the one-record-per-key format.
func recordCorruptCases(h *harness) []corruptCase {
	task := func(k string) string { return h.raw.lay().record(recKey{kindTask, k}) }
	root := func(fw string) string { return testPrefix + "/" + fw + "/" }
	return []corruptCase{
		{
			name: "flipped byte in a task record",
			mutate: func(t *testing.T, fw string) {
				v := append([]byte{}, h.raw.get(t, testPrefix, fw, task("t-00003"))...)
				v[len(v)-1] ^= 0x40
				h.raw.put(t, testPrefix, fw, task("t-00003"), v)
			},
			want:    ErrCorrupt,
			mention: func(fw string) string { return root(fw) + task("t-00003") },
		},
		{
			name:    "task record deleted",
			mutate:  func(t *testing.T, fw string) { h.raw.del(t, testPrefix, fw, task("t-00004")) },
			want:    ErrCorrupt,
			mention: func(fw string) string { return root(fw) + manifestName },
		},
		{
			name: "task record copied over another",
			mutate: func(t *testing.T, fw string) {
				h.raw.put(t, testPrefix, fw, task("t-00005"), h.raw.get(t, testPrefix, fw, task("t-00006")))
			},
			want:    ErrCorrupt,
			mention: func(fw string) string { return root(fw) + task("t-00005") },
		},
		{
			name: "older record restored",
			mutate: func(t *testing.T, fw string) {
				h.raw.put(t, testPrefix, fw, task("t-00007"), encodeInline(recKey{kindTask, "t-00007"}, []byte("stale")))
			},
			want:    ErrCorrupt,
			mention: func(fw string) string { return root(fw) + manifestName },
		},
		{
			name: "foreign key among the tasks",
			mutate: func(t *testing.T, fw string) {
				rel := strings.TrimSuffix(task("t-00001"), "t-00001") + "bad%zz"
				h.raw.put(t, testPrefix, fw, rel, []byte("x"))
			},
			want:    ErrForeign,
			mention: func(fw string) string { return "bad%zz" },
		},
	}
}

// packedCorruptCases damage the shards and log of ZooKeeper's format 2.
func packedCorruptCases(h *harness) []corruptCase {
	root := func(fw string) string { return testPrefix + "/" + fw + "/" }
	shardOf := func(t *testing.T, fw, task string) string { return zkShardOf(t, h, fw, recKey{kindTask, task}) }
	flip := func(t *testing.T, fw, rel string) {
		v := append([]byte{}, h.raw.get(t, testPrefix, fw, rel)...)
		v[len(v)/2] ^= 0x40
		h.raw.put(t, testPrefix, fw, rel, v)
	}
	var logged, hit string // the log chunk logCommit left, the shard damaged
	// logCommit commits a change that stays in the log (no compaction).
	logCommit := func(t *testing.T, fw string) string {
		s := h.newStore(t, testPrefix, fw).(*ZKStore)
		s.pk.ratio = 0
		gen := mustCommit(t, s, h.grant(t, testPrefix, fw), Batch{PutTasks: map[string][]byte{"t-00001": []byte("logged")}})
		logged = logName(gen, 0)
		h.raw.get(t, testPrefix, fw, logged) // it exists
		return logged
	}
	return []corruptCase{
		{
			name:    "flipped byte in a shard",
			mutate:  func(t *testing.T, fw string) { hit = shardOf(t, fw, "t-00003"); flip(t, fw, hit) },
			want:    ErrCorrupt,
			mention: func(fw string) string { return "shard " + root(fw) + hit + ": checksum mismatch" },
		},
		{
			name:    "shard deleted",
			mutate:  func(t *testing.T, fw string) { hit = shardOf(t, fw, "t-00004"); h.raw.del(t, testPrefix, fw, hit) },
			want:    ErrCorrupt,
			mention: func(fw string) string { return root(fw) + hit + " is missing" },
		},
		{
			name: "shard copied over another",
			mutate: func(t *testing.T, fw string) {
				leaves := zkLeaves(t, h, fw)
				if len(leaves) < 2 {
					t.Fatalf("the store has %d shards, want several", len(leaves))
				}
				hit = leaves[1]
				h.raw.put(t, testPrefix, fw, leaves[1], h.raw.get(t, testPrefix, fw, leaves[0]))
			},
			want:    ErrCorrupt,
			mention: func(fw string) string { return root(fw) + hit + " holds shard" },
		},
		{
			name: "older shard restored",
			mutate: func(t *testing.T, fw string) {
				rel := shardOf(t, fw, "t-00007")
				old := h.raw.get(t, testPrefix, fw, rel)
				s := h.newStore(t, testPrefix, fw)
				mustCommit(t, s, h.grant(t, testPrefix, fw), Batch{PutTasks: map[string][]byte{"t-00007": []byte("new")}})
				for k := range h.raw.dump(t, testPrefix, fw) {
					if strings.HasPrefix(k, logDir+"/") {
						t.Fatalf("%s left: the commit was not compacted", k)
					}
				}
				h.raw.put(t, testPrefix, fw, rel, old)
			},
			want:    ErrCorrupt,
			mention: func(fw string) string { return root(fw) + manifestName },
		},
		{
			name:    "flipped byte in a log chunk",
			mutate:  func(t *testing.T, fw string) { flip(t, fw, logCommit(t, fw)) },
			want:    ErrCorrupt,
			mention: func(fw string) string { return root(fw) + logged },
		},
		{
			name:    "log chunk deleted",
			mutate:  func(t *testing.T, fw string) { h.raw.del(t, testPrefix, fw, logCommit(t, fw)) },
			want:    ErrCorrupt,
			mention: func(fw string) string { return root(fw) + logged + " is missing" },
		},
		{
			name:    "foreign key among the shards",
			mutate:  func(t *testing.T, fw string) { h.raw.put(t, testPrefix, fw, shardsDir+"/bad%zz", []byte("x")) },
			want:    ErrForeign,
			mention: func(fw string) string { return "bad%zz" },
		},
	}
}

// zkTrie reads the shard trie from a format 2 store's manifest.
func zkTrie(t *testing.T, h *harness, fw string) *snode {
	t.Helper()
	m, _, err := decodeManifest(h.raw.get(t, testPrefix, fw, manifestName), maxFormat)
	if err != nil {
		t.Fatalf("manifest: %v", err)
	}
	root, err := decodeShape(m.shape)
	if err != nil {
		t.Fatalf("manifest: %v", err)
	}
	return root
}

// zkShardOf returns the shard znode that holds k.
func zkShardOf(t *testing.T, h *harness, fw string, k recKey) string {
	t.Helper()
	return zkTrie(t, h, fw).find(shardHash(k)).name()
}

// zkLeaves returns the shard znodes of a format 2 store.
func zkLeaves(t *testing.T, h *harness, fw string) []string {
	t.Helper()
	var out []string
	zkTrie(t, h, fw).walkLeaves(func(l *snode) { out = append(out, l.name()) })
	return out
}

// testNewerFormat: a store written by a newer binary is refused and left
// byte-identical, whether the manifest or a record claims the format, and
// the error names the key or znode that does.
func testNewerFormat(t *testing.T, h *harness) {
	for _, what := range []string{"manifest", "task t-00002", "part"} {
		t.Run(what, func(t *testing.T) {
			fw, f, _ := corruptSetup(t, h)
			var rel string
			switch what {
			case "manifest":
				rel = manifestName
			case "part":
				rel = h.raw.part(recKey{kindEntry, "big"}, 1, 1)
			default:
				rel = h.raw.lay().record(recKey{kindTask, "t-00002"})
				if h.layout == formatPacked {
					rel = zkShardOf(t, h, fw, recKey{kindTask, "t-00002"})
				}
			}
			v := append([]byte{}, h.raw.get(t, testPrefix, fw, rel)...)
			v[4] = byte(maxFormat + 1)
			h.raw.put(t, testPrefix, fw, rel, v)
			expectRefused(t, h, fw, f, ErrNewerFormat, testPrefix+"/"+fw+"/"+rel+": format "+fmt.Sprint(maxFormat+1))
		})
	}
}

// testCorruptOlder: a store of an older format that is corrupt is refused
// like a current one (named, left byte-identical): the current code does
// not migrate it.
func testCorruptOlder(t *testing.T, h *harness, o older) {
	for _, what := range []string{"task t-00003", "part"} {
		t.Run(what, func(t *testing.T) {
			fw := uniqueFW(t.Name())
			f := h.grant(t, testPrefix, fw)
			b := bigBatch("t", 10, 50)
			b.PutEntries = map[string][]byte{"big": value("big", 700<<10)}
			mustCommit(t, o.newStore(t, testPrefix, fw), f, b)
			var rel string
			switch {
			case what == "part":
				rel = layout{}.part(recKey{kindEntry, "big"}, 1, 1) // the names of formats 1 to 3
				h.raw.del(t, testPrefix, fw, rel)
			case o.format == formatRecords || h.layout == formatRecords:
				rel = h.raw.lay().record(recKey{kindTask, "t-00003"})
			default:
				rel = zkShardOf(t, h, fw, recKey{kindTask, "t-00003"})
			}
			if what != "part" {
				v := append([]byte{}, h.raw.get(t, testPrefix, fw, rel)...)
				v[len(v)-1] ^= 0x40
				h.raw.put(t, testPrefix, fw, rel, v)
			}
			man := h.raw.get(t, testPrefix, fw, manifestName)
			expectRefused(t, h, fw, f, ErrCorrupt, testPrefix+"/"+fw+"/"+rel)
			if _, version, err := decodeManifest(man, maxFormat); err != nil || version != o.format {
				t.Fatalf("the refused store's manifest is of format %d (%v), want %d", version, err, o.format)
			}
		})
	}
}

// testGarbage: what crashed writers leave behind without a commit point is
// ignored by Load and deleted by the next commit.
func testGarbage(t *testing.T, h *harness) {
	fw, f, m := corruptSetup(t, h)
	lay := h.raw.lay()
	chunk := journalName
	var gone []string
	if h.layout == formatPacked {
		chunk = logName
		// A shard of an interrupted split, and a log entry already folded
		// into the shards.
		gone = append(gone, shardsDir+"/9.1ff", logName(m.gen, 0), logName(m.gen+1, 1))
		h.raw.put(t, testPrefix, fw, shardsDir+"/9.1ff", []byte("split shard"))
		h.raw.put(t, testPrefix, fw, logName(m.gen, 0), []byte("folded"))
	}
	h.raw.put(t, testPrefix, fw, chunk(m.gen+1, 0), []byte("half-written journal"))
	h.raw.put(t, testPrefix, fw, chunk(m.gen+1, 1), []byte("more"))
	orphan := recKey{kindEntry, "gone"}
	h.raw.put(t, testPrefix, fw, lay.part(orphan, m.gen, 0), encodePart(orphan, m.gen, 0, []byte("orphan")))
	if h.format == formatHashedParts {
		// Under format 4 names: a part of a crashed writer's record, and one
		// of a live record's older generation.
		for _, p := range []struct {
			k   recKey
			gen uint64
		}{{orphan, m.gen + 1}, {recKey{kindEntry, "big"}, m.gen + 1}} {
			rel := h.raw.part(p.k, p.gen, 3)
			if dir := bucketDir(rel); !slices.Contains(slices.Collect(maps.Keys(h.raw.dump(t, testPrefix, fw))), dir) {
				h.raw.put(t, testPrefix, fw, dir, nil)
			}
			h.raw.put(t, testPrefix, fw, rel, encodePart(p.k, p.gen, 3, []byte("orphan")))
			gone = append(gone, rel)
		}
	}
	s := h.newStore(t, testPrefix, fw)
	checkModel(t, s, m)
	b := Batch{PutTasks: map[string][]byte{"next": []byte("n")}}
	mustCommit(t, s, f, b)
	m.apply(b)
	checkModel(t, h.newStore(t, testPrefix, fw), m)
	dump := h.raw.dump(t, testPrefix, fw)
	for rel, v := range dump {
		if strings.HasPrefix(rel, journalDir+"/") || strings.Contains(rel, "gone") || slices.Contains(gone, rel) ||
			strings.Contains(v, fmt.Sprintf("%x", "half-written")) {
			t.Errorf("garbage %s survived a commit", rel)
		}
	}
}
