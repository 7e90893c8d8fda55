package daemon

import (
	"os"
	"testing"
	"time"
)

// TestMain keeps the operator's view from observing on its own in unit
// tests: their fake engines allow only the calls each test expects. The
// end-to-end tests prove the view's refresh.
func TestMain(m *testing.M) {
	ViewRefresh = time.Hour
	os.Exit(m.Run())
}
