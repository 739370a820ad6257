package persist

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
)

// corruptSetup commits a small store with a large (parted) entry.
func corruptSetup(t *testing.T, h *harness) (string, Fence, *model) {
	t.Helper()
	fw := uniqueFW(t.Name())
	s := h.newStore(t, testPrefix, fw)
	f := h.grant(t, testPrefix, fw)
	b := bigBatch("t", 10, 50)
	b.FrameworkID = strp("id")
	b.PutEntries = map[string][]byte{"big": value("big", 700<<10), "small": []byte("s")}
	m := newModel()
	mustCommit(t, s, f, b)
	m.apply(b)
	checkModel(t, s, m)
	return fw, f, m
}

// expectRefused checks that loading and committing fail with want, that
// the error names mention, and that the store is left byte-identical.
func expectRefused(t *testing.T, h *harness, fw string, f Fence, want error, mention string) {
	t.Helper()
	before := h.raw.dump(t, testPrefix, fw)
	_, err := h.newStore(t, testPrefix, fw).Load(testCtx(t))
	if !errors.Is(err, want) {
		t.Fatalf("Load: %v, want %v", err, want)
	}
	if !strings.Contains(err.Error(), mention) {
		t.Fatalf("Load error %q does not name %q", err, mention)
	}
	t.Logf("Load refused the store: %v", err)
	_, err = h.newStore(t, testPrefix, fw).Commit(testCtx(t), f, Batch{PutTasks: map[string][]byte{"new": []byte("x")}})
	if !errors.Is(err, want) {
		t.Fatalf("Commit: %v, want %v", err, want)
	}
	if after := h.raw.dump(t, testPrefix, fw); !maps.Equal(before, after) {
		t.Fatalf("a refused store was changed:\nbefore %d keys\nafter  %d keys", len(before), len(after))
	}
}

func testCorruption(t *testing.T, h *harness) {
	lay := h.raw.lay()
	task := func(k string) string { return lay.record(recKey{kindTask, k}) }
	root := func(fw string) string { return testPrefix + "/" + fw + "/" }
	cases := []struct {
		name    string
		mutate  func(t *testing.T, fw string)
		want    error
		mention func(fw string) string
	}{
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
				h.raw.del(t, testPrefix, fw, lay.part(recKey{kindEntry, "big"}, 1, 1))
			},
			want:    ErrCorrupt,
			mention: func(fw string) string { return root(fw) + lay.part(recKey{kindEntry, "big"}, 1, 1) },
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
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fw, f, _ := corruptSetup(t, h)
			tc.mutate(t, fw)
			expectRefused(t, h, fw, f, tc.want, tc.mention(fw))
		})
	}
}

// testNewerFormat: a store written by a newer binary is refused and left
// byte-identical, whether the manifest or a record claims the format.
func testNewerFormat(t *testing.T, h *harness) {
	lay := h.raw.lay()
	for _, rel := range []string{manifestName, lay.record(recKey{kindTask, "t-00002"})} {
		t.Run(rel, func(t *testing.T) {
			fw, f, _ := corruptSetup(t, h)
			v := append([]byte{}, h.raw.get(t, testPrefix, fw, rel)...)
			v[4] = formatVersion + 1
			h.raw.put(t, testPrefix, fw, rel, v)
			expectRefused(t, h, fw, f, ErrNewerFormat, fmt.Sprintf("format %d", formatVersion+1))
		})
	}
}

// testGarbage: what crashed writers leave behind without a commit point is
// ignored by Load and deleted by the next commit.
func testGarbage(t *testing.T, h *harness) {
	fw, f, m := corruptSetup(t, h)
	lay := h.raw.lay()
	h.raw.put(t, testPrefix, fw, journalName(m.gen+1, 0), []byte("half-written journal"))
	h.raw.put(t, testPrefix, fw, journalName(m.gen+1, 1), []byte("more"))
	orphan := recKey{kindEntry, "gone"}
	h.raw.put(t, testPrefix, fw, lay.part(orphan, m.gen, 0), encodePart(orphan, m.gen, 0, []byte("orphan")))
	s := h.newStore(t, testPrefix, fw)
	checkModel(t, s, m)
	b := Batch{PutTasks: map[string][]byte{"next": []byte("n")}}
	mustCommit(t, s, f, b)
	m.apply(b)
	checkModel(t, h.newStore(t, testPrefix, fw), m)
	for rel := range h.raw.dump(t, testPrefix, fw) {
		if strings.HasPrefix(rel, journalDir+"/") || strings.Contains(rel, "gone") {
			t.Errorf("garbage %s survived a commit", rel)
		}
	}
}
