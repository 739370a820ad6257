package zkserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/regent-sched/regent/integration/childproc"
)

// Readiness polling.
const (
	probeInterval = 100 * time.Millisecond
	probeTimeout  = time.Second // per four-letter word
)

// Server modes, as the four-letter word stat reports them.
var (
	standaloneModes = []string{"standalone"}
	ensembleModes   = []string{"leader", "follower"}
)

// notServing is how a running server that does not serve requests (an
// ensemble member without a quorum) answers stat.
const notServing = "not currently serving requests"

// waitServing polls the server on 127.0.0.1:port until it answers "imok"
// to ruok, its stat output shows it serving requests in one of modes, and
// (where this can be checked) it is p that listens on port, not another
// server that holds it. It fails when p exits, after timeout, or when ctx
// is done.
func waitServing(ctx context.Context, p *childproc.Process, port int, modes []string, timeout time.Duration) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	for {
		if p.Exited() {
			return fmt.Errorf("exited while starting: %s", p.ExitStatus())
		}
		last := probe(ctx, addr, modes)
		if last == nil {
			switch mine, err := listens(p.PID(), port); {
			case mine, errors.Is(err, errors.ErrUnsupported):
				return nil // served by p, or no way to tell here
			case err != nil:
				last = fmt.Errorf("find the process listening on %s: %w", addr, err) // p may be exiting
			default:
				last = fmt.Errorf("%s is served by another process", addr)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not serving yet (%v): %w", last, ctx.Err())
		case <-deadline.C:
			return fmt.Errorf("not serving after %v: %w", timeout, last)
		case <-p.Done():
		case <-tick.C:
		}
	}
}

// probe checks once that the server at addr is up and serving in one of
// modes.
func probe(ctx context.Context, addr string, modes []string) error {
	out, err := fourLetterWord(ctx, addr, "ruok")
	if err != nil {
		return err
	}
	if out != "imok" {
		return fmt.Errorf("ruok answered %q, want \"imok\"", out)
	}
	out, err = fourLetterWord(ctx, addr, "stat")
	if err != nil {
		return err
	}
	if mode, err := statMode(out); err != nil || !slices.Contains(modes, mode) {
		return fmt.Errorf("stat: not serving requests yet: %q", strings.TrimSpace(out))
	}
	return nil
}

// statMode returns the mode in the output of stat ("standalone", "leader",
// "follower", "observer", ...), or "" when the server says it is not
// serving requests or closes the connection without a word, as it does
// with every client connection when it stops serving.
func statMode(out string) (string, error) {
	for line := range strings.Lines(out) {
		if mode, ok := strings.CutPrefix(line, "Mode: "); ok {
			return strings.TrimSpace(mode), nil
		}
	}
	if out == "" || strings.Contains(out, notServing) {
		return "", nil
	}
	return "", fmt.Errorf("stat answered %q, which has no mode", strings.TrimSpace(out))
}

// fourLetterWord sends a ZooKeeper four-letter command and returns the
// reply; the server closes the connection after replying.
func fourLetterWord(ctx context.Context, addr, cmd string) (string, error) {
	d := net.Dialer{Timeout: probeTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", fmt.Errorf("four-letter word %s: %w", cmd, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(probeTimeout)); err != nil {
		return "", fmt.Errorf("four-letter word %s: %w", cmd, err)
	}
	if _, err := io.WriteString(conn, cmd); err != nil {
		return "", fmt.Errorf("four-letter word %s: write: %w", cmd, err)
	}
	b, err := io.ReadAll(io.LimitReader(conn, 1<<20))
	if err != nil {
		return string(b), fmt.Errorf("four-letter word %s: read: %w", cmd, err)
	}
	return string(b), nil
}
