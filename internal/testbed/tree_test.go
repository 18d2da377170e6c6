package testbed

import (
	"os"
	"testing"
)

// TestTreeSample measures this test process as a tree: it has used CPU and
// holds memory, and its own pid is in its tree.
func TestTreeSample(t *testing.T) {
	pid := os.Getpid()
	if d := descendants(pid); len(d) == 0 || d[0] != pid {
		t.Errorf("descendants(%d) = %v", pid, d)
	}
	if statTicks(pid) <= 0 && statusKiB(pid, "VmRSS:") <= 0 {
		t.Errorf("no CPU ticks nor RSS read for pid %d", pid)
	}
}
