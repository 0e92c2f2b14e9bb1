package audit

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that replay leaves no goroutine behind (the partition
// readers of a timeline, the progress ticker).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
