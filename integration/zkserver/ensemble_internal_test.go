package zkserver

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestStartEnsembleRetriesPortClash takes the client port of member 2
// before the first attempt binds it, as another process might: the
// member fails, and StartEnsemble starts the whole ensemble again on
// other ports.
func TestStartEnsembleRetriesPortClash(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	var attempts []int
	pickMembers = func(n int) ([]Member, error) {
		members, err := freeMembers(n)
		if err == nil && len(attempts) == 0 {
			members[1].ClientPort = taken
		}
		attempts = append(attempts, members[1].ClientPort)
		return members, err
	}
	defer func() { pickMembers = freeMembers }()

	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	e, err := StartEnsemble(ctx, 3, Options{Dir: dir})
	if err != nil {
		t.Fatalf("start ensemble: %v", err)
	}
	defer func() {
		if err := e.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	// The first ports served the first attempt, the second the retry.
	if len(attempts) != 2 || attempts[0] != taken || e.Members()[1].Port() == taken {
		t.Fatalf("member 2's client ports %v, now %d: want a retry away from the taken port %d", attempts, e.Members()[1].Port(), taken)
	}
	log, err := os.ReadFile(filepath.Join(dir, "member-2", "zookeeper.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(bytes.ToLower(log), []byte("address already in use")) || !bytes.Contains(log, []byte("retrying the ensemble on other ports")) {
		t.Fatalf("member 2's log does not show the clash and the retry:\n%s", log)
	}
}

func TestEnsemblePorts(t *testing.T) {
	ports, err := ensemblePorts(9)
	if err != nil {
		t.Fatal(err)
	}
	low, err := ephemeralPortMin()
	if err != nil {
		low = 65536 // no way to tell here: any port will do
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p < 1 || p >= low || seen[p] {
			t.Fatalf("ensemblePorts(9) = %v: want distinct ports below the ephemeral range, which starts at %d", ports, low)
		}
		seen[p] = true
	}
}
