package drill

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// TestSoak runs a seeded random schedule of faults against each store,
// then the invariant checker. REGENT_SOAK_DURATION sets the time per store
// (default 30s: a minute in all inside `make test`; `make soak` runs
// longer), REGENT_SOAK_SEED replays a schedule.
func TestSoak(t *testing.T) {
	d := 30 * time.Second
	if v := os.Getenv("REGENT_SOAK_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d <= 0 || d > 2*time.Hour {
			t.Fatalf("REGENT_SOAK_DURATION=%q: want a duration up to 2h", v)
		}
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("REGENT_SOAK_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("REGENT_SOAK_SEED=%q: want an unsigned integer", v)
		}
	}
	t.Logf("soak seed %d, %v per store", seed, d)
	stores(t, func(t *testing.T, store string) {
		tp := Start(t, Options{Store: store})
		firstLeader(t, tp)
		tp.Soak(seed, d, 3)
	})
}
