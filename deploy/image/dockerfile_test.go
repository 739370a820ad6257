package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDockerfileMatchesImage keeps the Dockerfile (for those with Docker)
// and this command's image alike: the same base, user, entrypoint,
// command, environment and port, and a static binary.
func TestDockerfileMatchesImage(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var final []string // the instructions of the last stage
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "FROM ") {
			final = nil
		}
		if line != "" && !strings.HasPrefix(line, "#") {
			final = append(final, line)
		}
	}
	cfg := imageConfig(spec{})
	entry, _ := json.Marshal(cfg.Entrypoint)
	cmd, _ := json.Marshal(cfg.Cmd)
	want := []string{
		"FROM scratch",
		"USER " + cfg.User,
		"ENV " + strings.Join(cfg.Env, " "),
		"EXPOSE " + strings.TrimSuffix(httpPort, "/tcp"),
		"ENTRYPOINT " + strings.ReplaceAll(string(entry), ",", ", "),
		"CMD " + strings.ReplaceAll(string(cmd), ",", ", "),
	}
	for _, w := range want {
		found := false
		for _, l := range final {
			found = found || l == w
		}
		if !found {
			t.Errorf("the Dockerfile's final stage lacks %q (deploy/image builds the image that way):\n%s", w, strings.Join(final, "\n"))
		}
	}
	for _, w := range []string{"CGO_ENABLED=0", "-X main.version=", binaryPath, caPath, "nonroot:x:65532:65532:", "nonroot:x:65532:"} {
		if !strings.Contains(string(b), w) {
			t.Errorf("the Dockerfile does not mention %q", w)
		}
	}
}
