package zkserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
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

// waitServing polls the server on 127.0.0.1:port until it answers "imok"
// to ruok, its stat output shows it serving requests, and (where this can
// be checked) it is p that listens on port, not another server that holds
// it. It fails when p exits, after timeout, or when ctx is done.
func waitServing(ctx context.Context, p *childproc.Process, port int, timeout time.Duration) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	for {
		if p.Exited() {
			return fmt.Errorf("exited while starting: %s", p.ExitStatus())
		}
		last := probe(ctx, addr)
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

// probe checks once that the server at addr is up and serving.
func probe(ctx context.Context, addr string) error {
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
	if !strings.Contains(out, "Mode: standalone") {
		return fmt.Errorf("stat: not serving requests yet: %q", strings.TrimSpace(out))
	}
	return nil
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
