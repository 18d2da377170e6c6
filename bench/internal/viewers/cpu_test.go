package viewers

import (
	"math"
	"testing"
	"time"

	"github.com/votestream/votestream/internal/testbed"
)

// TestCPUUse checks the accounting of a window: this process's CPU is part
// of the machine's busy time, and the machine's time adds up to its cores.
func TestCPUUse(t *testing.T) {
	if testbed.ReadMachineCPU().Cores == 0 {
		t.Skip("no /proc/stat")
	}
	start := markCPU(nil, nil, nil)
	x := 1.0
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		for range 1000 {
			x = math.Sqrt(x + 1)
		}
	}
	u := markCPU(nil, nil, nil).since(start)
	t.Logf("busy %.2f idle %.2f steal %.2f client %.2f cores (x=%.3f)", u.busy, u.idle, u.steal, u.client, x)
	if u.client <= 0 {
		t.Errorf("a second of spinning used %.2f cores of this process", u.client)
	}
	// Both sides are sampled at 100 Hz: allow a few ticks over a second.
	if u.busy < u.client-0.05 {
		t.Errorf("the machine was busy %.2f cores, less than this process's %.2f", u.busy, u.client)
	}
	if sum, n := u.busy+u.idle+u.steal, float64(u.cores); math.Abs(sum-n) > 0.1*n {
		t.Errorf("busy, idle and stolen add up to %.2f cores, the machine has %.0f", sum, n)
	}
	if u.counter != 0 || u.broker != 0 || u.server != 0 {
		t.Errorf("processes not given used CPU: %+v", u)
	}
}
