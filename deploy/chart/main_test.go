package chart

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain ends the package's tests with a goroutine-leak check: rendering
// must leave nothing running.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
