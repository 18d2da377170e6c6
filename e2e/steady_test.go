package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSteadyGroup keeps a counter in one generation longer than its join
// deadline (rebalance + session timeout + 10 s): a healthy generation must
// not be mistaken for kafka-go's stuck Next and torn down. The counter is
// ready while it owns its partitions.
func TestSteadyGroup(t *testing.T) {
	bin := Binaries(t)
	broker := StartBroker(t)
	env := NewEnv(t, broker, 2)
	c := Start(t, "counter", bin.Counter, env.Vars("GROUP_SESSION_TIMEOUT=1s", "GROUP_REBALANCE_TIMEOUT=1s", "BATCH_MAX_WAIT=100ms")...)
	addr := c.MetricsAddr(t)
	c.WaitOutput(t, reMatch(`msg="partitions restored"`), 30*time.Second)
	for _, path := range []string{"/healthz", "/readyz"} {
		res, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s, want 200", path, res.Status)
		}
	}
	time.Sleep(14 * time.Second) // past the 12 s join deadline
	if n := strings.Count(c.Output(), `msg="generation joined"`); n != 1 {
		t.Errorf("joined %d generations while alone in the group, want 1:\n%s", n, c.Output())
	}
	if err := c.Stop(30 * time.Second); err != nil {
		t.Errorf("counter: %v", err)
	}
}
