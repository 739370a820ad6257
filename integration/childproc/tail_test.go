package childproc_test

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/regent-sched/regent/integration/childproc"
)

func TestTail(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limit  int
		writes []string
		want   string
	}{
		{"empty", 16, nil, ""},
		{"fits", 16, []string{"a\n", "b\n"}, "a\nb\n"},
		{"cut at a line", 16, []string{"line 0\n", "line 1\n", "line 2\n"}, "...\nline 1\nline 2\n"},
		{"cut in one write", 8, []string{"first\nsecond\nthird\n"}, "...\nthird\n"},
		{"no newline in the tail", 4, []string{"abcdefgh"}, "...\nefgh"},
		{"nothing kept", 0, []string{"abc\n"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := childproc.NewTail(tc.limit)
			for _, w := range tc.writes {
				if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if got := b.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestTailManyWrites checks the bulk trimming: after many writes only the
// last lines remain, and String does not change what later calls see.
func TestTailManyWrites(t *testing.T) {
	b := childproc.NewTail(32)
	for i := range 1000 {
		fmt.Fprintf(b, "line %d\n", i)
	}
	got := b.String()
	if !strings.HasPrefix(got, "...\n") || !strings.HasSuffix(got, "line 999\n") || len(got) > 32+4 {
		t.Fatalf("String() = %q, want a cut marker and at most 32 bytes of the last lines", got)
	}
	if again := b.String(); again != got {
		t.Fatalf("second String() = %q, want %q", again, got)
	}
}

func TestEnviron(t *testing.T) {
	t.Setenv("CHILDPROC_DROP_A", "1")
	t.Setenv("CHILDPROC_DROP_B", "2")
	t.Setenv("CHILDPROC_KEEP", "3")
	env := childproc.Environ("CHILDPROC_DROP_", "CHILDPROC_KEEPX=")
	for _, kv := range env {
		if strings.HasPrefix(kv, "CHILDPROC_DROP_") {
			t.Errorf("Environ kept %q", kv)
		}
	}
	if !slices.Contains(env, "CHILDPROC_KEEP=3") {
		t.Error("Environ dropped CHILDPROC_KEEP")
	}
	if got, want := len(childproc.Environ()), len(os.Environ()); got != want {
		t.Errorf("Environ() has %d variables, want all %d", got, want)
	}
}
