package main

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/regent-sched/regent/cmd/regent/internal/config"
)

// flagsMarkdown renders the flags of `regent run` as the table in
// docs/FLAGS.md (kept current by TestFlagsDocIsCurrent; regenerate with
// `make docs`).
func flagsMarkdown() string {
	var b strings.Builder
	b.WriteString("# regent run: every flag\n\n")
	b.WriteString("Generated from the CLI by `make docs`; a test fails when this file and the binary disagree.\n")
	b.WriteString("Every flag can also be set by the environment variable shown, or by its name as a key in the\n")
	b.WriteString("YAML file given with `--config`. A flag on the command line wins over the environment, which\n")
	b.WriteString("wins over the file.\n\n")
	b.WriteString("| Flag | Environment | Default | Meaning |\n|---|---|---|---|\n")
	newRunCmd().Flags().VisitAll(func(f *pflag.Flag) {
		def := f.DefValue
		switch {
		case f.Name == "id":
			def = "the host name"
		case f.Name == "user":
			def = "$USER, else root"
		case def == "[]" || def == "":
			def = ""
		}
		if def != "" {
			def = "`" + def + "`"
		}
		usage := strings.ReplaceAll(f.Usage, "|", "\\|")
		fmt.Fprintf(&b, "| `--%s` | `%s` | %s | %s |\n", f.Name, config.EnvName(f.Name), def, usage)
	})
	return b.String()
}
