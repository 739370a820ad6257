package fleet

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/regent-sched/regent/core"
)

func TestConfigDefaults(t *testing.T) {
	got := mustNew(t, Config{Name: "web"}).Config()
	want := Config{Name: "web", CPUs: 0.1, Mem: 32, Command: "sleep 86400", Role: "*",
		BackoffMin: time.Second, BackoffMax: time.Minute, ResetAfter: time.Minute, DeclineRefuse: 5 * time.Minute}
	if got != want {
		t.Fatalf("defaults\n got  %+v\n want %+v", got, want)
	}
	set := Config{Name: "a.b_c-d:e", CPUs: 2, Mem: 1024, Command: "./run", Role: "prod/web",
		BackoffMin: time.Millisecond, BackoffMax: time.Millisecond, ResetAfter: time.Hour, DeclineRefuse: time.Second}
	if got := mustNew(t, set).Config(); got != set {
		t.Fatalf("explicit config changed: %+v", got)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want []string // in the error: the field and the bad value
	}{
		{"no name", func(c *Config) { c.Name = "" }, []string{"Name", `""`}},
		{"slash in name", func(c *Config) { c.Name = "a/b" }, []string{"Name", `"a/b"`, `'/'`}},
		{"backslash in name", func(c *Config) { c.Name = `a\b` }, []string{"Name", `'\\'`}},
		{"control character in name", func(c *Config) { c.Name = "a\tb" }, []string{"Name", `"a\tb"`}},
		{"long name", func(c *Config) { c.Name = strings.Repeat("n", 235) }, []string{"Name", "235 bytes", "234"}},
		{"name not UTF-8", func(c *Config) { c.Name = "a\xffb" }, []string{"Name", "UTF-8"}},
		{"negative cpus", func(c *Config) { c.CPUs = -1 }, []string{"CPUs", "-1"}},
		{"cpus below Mesos' precision", func(c *Config) { c.CPUs = 0.0001 }, []string{"CPUs", "0.0001"}},
		{"cpus not a number", func(c *Config) { c.CPUs = math.NaN() }, []string{"CPUs", "NaN"}},
		{"infinite mem", func(c *Config) { c.Mem = math.Inf(1) }, []string{"Mem", "+Inf"}},
		{"negative mem", func(c *Config) { c.Mem = -32 }, []string{"Mem", "-32"}},
		{"blank command", func(c *Config) { c.Command = "  " }, []string{"Command", `"  "`}},
		{"bad role", func(c *Config) { c.Role = "-ops" }, []string{"Role", `"-ops"`}},
		{"role with a space", func(c *Config) { c.Role = "a b" }, []string{"Role", `"a b"`}},
		{"role with an empty segment", func(c *Config) { c.Role = "a//b" }, []string{"Role", `"a//b"`}},
		{"backoff order", func(c *Config) { c.BackoffMin, c.BackoffMax = 2*time.Minute, time.Minute }, []string{"BackoffMin", "2m0s", "1m0s"}},
		{"backoff min above the default max", func(c *Config) { c.BackoffMin = 2 * time.Minute }, []string{"BackoffMin", "2m0s"}},
		{"negative backoff", func(c *Config) { c.BackoffMin = -time.Second }, []string{"BackoffMin", "-1s"}},
		{"negative backoff max", func(c *Config) { c.BackoffMax = -time.Second }, []string{"BackoffMax", "-1s"}},
		{"negative reset", func(c *Config) { c.ResetAfter = -time.Second }, []string{"ResetAfter", "-1s"}},
		{"negative refuse", func(c *Config) { c.DeclineRefuse = -time.Second }, []string{"DeclineRefuse", "-1s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Name: "web"}
			tc.mod(&cfg)
			f, err := New(cfg)
			if err == nil {
				t.Fatalf("accepted: %+v", f.Config())
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	// Every problem is reported at once.
	_, err := New(Config{CPUs: -1, Mem: -1, ResetAfter: -1})
	for _, w := range []string{"Name", "CPUs", "Mem", "ResetAfter"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not name %s", err, w)
		}
	}
	if _, err := New(Config{Name: strings.Repeat("n", 234)}); err != nil {
		t.Errorf("longest name refused: %v", err)
	}
}

// The state survives core's codec unchanged, and equal states encode to
// equal bytes (core writes the state only when its encoding changed).
func TestStateEncoding(t *testing.T) {
	var codec core.JSONCodec[State]
	s := State{NextTask: 42, Agents: map[string]Agent{
		"A2": {Hostname: "h2", LastOffer: t0, Failures: 3, NotBefore: t0.Add(time.Second), RunningSince: t0.Add(-time.Minute)},
		"A1": {Blacklisted: true, BlacklistedAt: t0, Reason: "disk", Gone: true,
			LastExit: &Exit{TaskID: "web-000001", State: "TASK_FAILED", Reason: "REASON_X", Message: "m", At: t0}},
		"A3": {},
	}}
	b, err := codec.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := codec.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("round trip\n got  %+v\n want %+v", got, s)
	}
	for i := 0; i < 10; i++ {
		again, _ := codec.Encode(clone(s))
		if !bytes.Equal(again, b) {
			t.Fatalf("encoding not deterministic:\n%s\n%s", b, again)
		}
	}
	want := `{"next_task":42,"agents":{"A1":{"gone":true,"blacklisted":true,"blacklisted_at":"2030-01-02T03:04:05Z","reason":"disk",` +
		`"last_exit":{"task_id":"web-000001","state":"TASK_FAILED","reason":"REASON_X","message":"m","at":"2030-01-02T03:04:05Z"}},` +
		`"A2":{"hostname":"h2","last_offer":"2030-01-02T03:04:05Z","failures":3,"not_before":"2030-01-02T03:04:06Z","running_since":"2030-01-02T03:03:05Z"},` +
		`"A3":{}}}`
	if string(b) != want {
		t.Fatalf("encoding\n got  %s\n want %s", b, want)
	}
	if b, _ := json.Marshal(State{}); string(b) != `{"next_task":0}` {
		t.Fatalf("empty state %s", b)
	}
}
