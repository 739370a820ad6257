package replica

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap/zaptest"

	"github.com/regent-sched/regent/cmd/regent/internal/config"
	"github.com/regent-sched/regent/cmd/regent/internal/fleet"
	"github.com/regent-sched/regent/core"
	"github.com/regent-sched/regent/integration/mesossim"
	"github.com/regent-sched/regent/integration/simtest"
	"github.com/regent-sched/regent/integration/testserver"
)

// world is a store and a simulated Mesos for replicas under test.
type world struct {
	etcd *testserver.Etcd // nil when the store is ZooKeeper
	sim  *mesossim.Cluster
	// store are the flags that name the store in configFor.
	store []string
}

func newWorld(t *testing.T, agents int) *world {
	t.Helper()
	return newEtcdWorld(t, testserver.StartEtcd(t), agents)
}

// newEtcdWorld is a world whose store is e.
func newEtcdWorld(t *testing.T, e *testserver.Etcd, agents int) *world {
	t.Helper()
	return &world{etcd: e, sim: simtest.Start(t, agents, nil), store: []string{"--etcd-endpoints", e.Endpoints()[0]}}
}

// running is one replica running in this process.
type running struct {
	*Replica
	base string
	run  *simtest.Background
}

// configFor builds a validated configuration from flags.
func (w *world) configFor(t *testing.T, id string, extra ...string) *config.Config {
	t.Helper()
	fs := pflag.NewFlagSet(id, pflag.ContinueOnError)
	cfg := config.Register(fs)
	args := []string{
		"--id", id, "--name", "regent-test", "--listen", "127.0.0.1:0", "--election-ttl", "2s",
		"--master", w.sim.URL(), "--relaunch-backoff-min", "100ms", "--relaunch-backoff-max", "1s",
		"--shutdown-timeout", "10s",
	}
	args = append(append(args, w.store...), extra...)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Load(fs, func(string) (string, bool) { return "", false }); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func fastScheduler(c *core.Config[fleet.State]) {
	c.BackoffMin, c.BackoffMax = 50*time.Millisecond, 500*time.Millisecond
	c.ReconcileMin, c.ReconcileMax = 100*time.Millisecond, time.Second
	c.TickInterval = 50 * time.Millisecond
}

// start opens and runs a replica; it is stopped at the end of the test.
func (w *world) start(t *testing.T, cfg *config.Config, opts Options) *running {
	t.Helper()
	if opts.SchedulerTuning == nil {
		opts.SchedulerTuning = fastScheduler
	}
	r, err := Open(cfg, zaptest.NewLogger(t).Named(cfg.ID), opts)
	if err != nil {
		t.Fatalf("open %s: %v", cfg.ID, err)
	}
	rn := &running{Replica: r, base: r.Address(), run: simtest.Go(r.Run)}
	t.Cleanup(func() { rn.stop(t) })
	return rn
}

// stop stops the replica gracefully and returns Run's error.
func (rn *running) stop(t *testing.T) error {
	t.Helper()
	return rn.run.Stop(t, 30*time.Second)
}

// call sends a request and returns the status, headers and body.
func call(t *testing.T, method, url, body string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func decode[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("decode %T from %q: %v", v, body, err)
	}
	return v
}

var (
	eventually = simtest.Eventually
	allRunning = simtest.Running
)

// freeListener is a loopback listener on a free port.
func freeListener(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}
