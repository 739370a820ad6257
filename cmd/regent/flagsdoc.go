package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/regent-sched/regent/cmd/regent/internal/config"
)

// flagsMarkdown renders docs/FLAGS.md (kept current by
// TestFlagsDocIsCurrent; regenerate with `make docs`): the table of
// `regent run`'s flags with their environment variables, then one table
// per other subcommand. The chart's tests (deploy/chart) parse the file:
// keep the `regent run` section's format.
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
	for _, cmd := range newRoot().Commands() {
		if cmd.Name() != "run" {
			subcommandFlags(&b, cmd)
		}
	}
	return b.String()
}

// subcommandFlags renders the section of a subcommand other than `regent
// run`: its flags come from the command line only.
func subcommandFlags(b *strings.Builder, cmd *cobra.Command) {
	fmt.Fprintf(b, "\n# regent %s: every flag\n\n", cmd.Name())
	fmt.Fprintf(b, "`%s`: %s.", cmd.UseLine(), strings.TrimSuffix(cmd.Short, "."))
	if !cmd.HasAvailableFlags() {
		b.WriteString(" It has no flags (but `--help`).\n")
		return
	}
	b.WriteString(" Its flags come from the command line only (`regent " + cmd.Name() + " --help` shows them too).\n\n")
	b.WriteString("| Flag | Default | Meaning |\n|---|---|---|\n")
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden || f.Name == "help" {
			return
		}
		name := "`--" + f.Name + "`"
		if f.Shorthand != "" {
			name = "`-" + f.Shorthand + "`, " + name
		}
		def := f.DefValue
		if def == "[]" || (f.Value.Type() == "bool" && def == "false") {
			def = ""
		}
		if def != "" {
			def = "`" + def + "`"
		}
		fmt.Fprintf(b, "| %s | %s | %s |\n", name, def, strings.ReplaceAll(f.Usage, "|", "\\|"))
	})
}
