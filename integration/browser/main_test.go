package browser

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: the test
// servers must be closed, and a browser call must not leave one waiting on
// Chromium.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
