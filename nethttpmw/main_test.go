package nethttpmw

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind: every limiter's
// sweeper is stopped and every test server is shut down.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
