package browser

import (
	"errors"
	"strings"
	"testing"
)

func TestFind(t *testing.T) {
	t.Setenv("CHROMIUM", "")
	bin, err := Find()
	if err != nil {
		t.Fatalf("these tests need headless Chromium: %v", err)
	}
	t.Logf("chromium: %s", bin)

	tests := []struct {
		name     string
		chromium string
		path     string // "" keeps PATH
		want     string // "" for ErrNotInstalled
	}{
		{"CHROMIUM names the binary", bin, "", bin},
		{"CHROMIUM names a missing binary", "/nonexistent/chromium", "", ""},
		{"nothing on PATH", "", t.TempDir(), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CHROMIUM", tt.chromium)
			if tt.path != "" {
				t.Setenv("PATH", tt.path)
			}
			got, err := Find()
			if tt.want != "" {
				if err != nil || got != tt.want {
					t.Errorf("Find() = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "scripts/install-chromium.sh") {
				t.Errorf("Find() = %q, %v; want an error wrapping ErrNotInstalled that names scripts/install-chromium.sh", got, err)
			}
		})
	}
}
