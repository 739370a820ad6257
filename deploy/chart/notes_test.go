package chart

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// regentCommand is a `regent SUBCOMMAND --flag...` that NOTES.txt tells
// the user to run.
type regentCommand struct {
	sub   string
	flags []string // long flags, without "--" and value
	line  string
}

// subcommand is what a subcommand's name looks like (not "0.1.0:").
var subcommand = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// notesCommands finds the regent commands in NOTES.txt: on the lines that
// start with a command (kubectl, regent), joined across trailing
// backslashes, the words after "regent SUBCOMMAND" where it starts the
// line or follows "--" (kubectl exec POD -- regent ...), up to a shell
// operator.
func notesCommands(notes string) []regentCommand {
	var lines []string
	cont := false
	for _, l := range strings.Split(notes, "\n") {
		l = strings.TrimSpace(l)
		if cont {
			lines[len(lines)-1] += " " + l
		} else {
			lines = append(lines, l)
		}
		cont = strings.HasSuffix(l, "\\")
		if cont {
			lines[len(lines)-1] = strings.TrimSuffix(lines[len(lines)-1], "\\")
		}
	}
	var cmds []regentCommand
	for _, l := range lines {
		w := strings.Fields(l)
		if len(w) == 0 || w[0] != "kubectl" && w[0] != "regent" {
			continue
		}
		for i := 0; i+1 < len(w); i++ {
			if w[i] != "regent" || i > 0 && w[i-1] != "--" || !subcommand.MatchString(w[i+1]) {
				continue
			}
			cmd := regentCommand{sub: w[i+1], line: l}
			for _, a := range w[i+2:] {
				if a == "|" || a == "&&" || a == "||" || a == ";" {
					break
				}
				if strings.HasPrefix(a, "--") && len(a) > 2 {
					name, _, _ := strings.Cut(a[2:], "=")
					cmd.flags = append(cmd.flags, name)
				}
			}
			cmds = append(cmds, cmd)
		}
	}
	return cmds
}

// TestNotesUseRealFlags renders NOTES.txt for every case with both SDKs
// and checks each regent command it prints against the flags docs/FLAGS.md
// lists for that subcommand: a renamed flag of `regent status` must break
// here, not in a user's terminal. A subcommand docs/FLAGS.md has no
// section for fails the test.
func TestNotesUseRealFlags(t *testing.T) {
	bf := flags(t)
	for _, rc := range renderCases {
		t.Run(rc.name, func(t *testing.T) {
			t.Parallel()
			forEachSDK(t, func(t *testing.T, h helmSDK) {
				vals := caseValues(t, h, rc.files, rc.yaml, rc.set)
				_, notes, err := h.template(chartDir, vals, rc.rel)
				if err != nil {
					t.Fatalf("helm template: %v", err)
				}
				cmds := notesCommands(notes)
				if !slices.ContainsFunc(cmds, func(c regentCommand) bool { return c.sub == "status" && slices.Contains(c.flags, "addr") }) {
					t.Fatalf("NOTES.txt prints no `regent status --addr ...` (found %+v):\n%s", cmds, notes)
				}
				for _, cmd := range cmds {
					known, ok := bf.sub[cmd.sub]
					if !ok {
						t.Errorf("NOTES.txt runs `regent %s`, which docs/FLAGS.md has no section for: %s", cmd.sub, cmd.line)
						continue
					}
					for _, f := range cmd.flags {
						if !known[f] {
							t.Errorf("NOTES.txt runs `regent %s --%s`, a flag docs/FLAGS.md does not list for regent %s: %s", cmd.sub, f, cmd.sub, cmd.line)
						}
					}
				}
			})
		})
	}
}

// TestNotesCommands checks the parsing of NOTES.txt's commands.
func TestNotesCommands(t *testing.T) {
	notes := "regent 0.1.0: 3 replicas\n" +
		"2. Find the leader: ask any replica (the image's regent binary has a status command).\n" +
		"   kubectl -n x exec r-0 -- regent status \\\n" +
		"     --addr https://r.x.svc:8080 --ca-file /etc/regent/tls/peer-ca.crt\n" +
		"   kubectl -n x port-forward svc/r 8080:8080\n" +
		"   regent drill kill-leader --runs=1 -o json | jq .\n"
	got := notesCommands(notes)
	want := []regentCommand{
		{sub: "status", flags: []string{"addr", "ca-file"}},
		{sub: "drill", flags: []string{"runs"}},
	}
	if len(got) != len(want) {
		t.Fatalf("commands %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].sub != want[i].sub || !slices.Equal(got[i].flags, want[i].flags) {
			t.Errorf("command %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestReadFlagsSections reads a docs/FLAGS.md with a section per
// subcommand after `regent run`'s, in tables of other columns: the
// REGENT_* variables stay run's alone, and every subcommand gets its own
// flags.
func TestReadFlagsSections(t *testing.T) {
	doc := "# regent: every flag of every subcommand\n\n" +
		"## regent run: every flag\n\n" +
		"| Flag | Environment | Default | Meaning |\n|---|---|---|---|\n" +
		"| `--listen` | `REGENT_LISTEN` | `:8080` | address |\n" +
		"| `--log-level` | `REGENT_LOG_LEVEL` | `info` | log level |\n\n" +
		"### Precedence\n\nflags, then REGENT_*, then --config.\n\n" +
		"| `--config` | `REGENT_CONFIG` |  | YAML file |\n\n" +
		"## `regent status`\n\n" +
		"```sh\n# a comment, not a heading\nregent status --addr http://x:8080\n```\n\n" +
		"| Flag | Default | Meaning |\n|---|---|---|\n" +
		"| `--addr` | `http://127.0.0.1:8080` | base URL |\n" +
		"| `--ca-file` |  | CA bundle |\n" +
		"| `--log-level` | `REGENT_LOG_LEVEL_STATUS` | not run's |\n\n" +
		"## regent drill\n\n" +
		"| `-o`, `--output` | `text` | format |\n\n" +
		"## See also\n\n" +
		"| `--stray` | `REGENT_STRAY` | | in no section |\n"
	p := filepath.Join(t.TempDir(), "FLAGS.md")
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	bf, err := readFlags(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(bf.envOf); got != 3 || bf.envOf["listen"] != "REGENT_LISTEN" || bf.envOf["log-level"] != "REGENT_LOG_LEVEL" || bf.envOf["config"] != "REGENT_CONFIG" {
		t.Errorf("run's variables %v, want listen, log-level and config (from its nested part)", bf.envOf)
	}
	for sub, want := range map[string][]string{
		"run":    {"config", "listen", "log-level"},
		"status": {"addr", "ca-file", "log-level"},
		"drill":  {"output"},
	} {
		var got []string
		for f := range bf.sub[sub] {
			got = append(got, f)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("flags of regent %s: %q, want %q", sub, got, want)
		}
	}
	if len(bf.sub) != 3 {
		t.Errorf("sections %v, want run, status and drill", bf.sub)
	}

	// The file as it is today: one section.
	bf = flags(t)
	if len(bf.sub["run"]) != len(bf.envOf) {
		t.Errorf("docs/FLAGS.md: %d flags of regent run, %d variables", len(bf.sub["run"]), len(bf.envOf))
	}
}
