package e2e

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestBadConfig runs each service with a bad setting: it must exit non-zero
// within seconds, saying so in one line that names the variable.
func TestBadConfig(t *testing.T) {
	bin := Binaries(t)
	tests := []struct {
		name, bin, env, want string
	}{
		{"producer duration", bin.Producer, "BATCH_INTERVAL=5 parsecs", "BATCH_INTERVAL"},
		{"producer negative batch", bin.Producer, "VOTES_PER_BATCH=-1", "VOTES_PER_BATCH"},
		{"producer compression", bin.Producer, "KAFKA_COMPRESSION=brotli", "KAFKA_COMPRESSION"},
		{"producer scale", bin.Producer, "SCALE=2", "SCALE"},
		{"producer seed", bin.Producer, "SEED=abc", "SEED"},
		{"producer brokers", bin.Producer, "KAFKA_BROKERS=nohostport", "KAFKA_BROKERS"},
		{"counter wait", bin.Counter, "BATCH_MAX_WAIT=0s", "BATCH_MAX_WAIT"},
		{"counter batch", bin.Counter, "BATCH_MAX_RECORDS=x", "BATCH_MAX_RECORDS"},
		{"counter log", bin.Counter, "LOG_FORMAT=xml", "LOG_FORMAT"},
		{"counter partitions", bin.Counter, "KAFKA_PARTITIONS=0", "KAFKA_PARTITIONS"},
		{"broker addr", bin.Broker, "BROKER_ADDR=nowhere", "BROKER_ADDR"},
		// Nothing listens on port 1: refused at once, reported in one line.
		{"producer unreachable", bin.Producer, "KAFKA_BROKERS=127.0.0.1:1", "KAFKA_BROKERS"},
		{"counter unreachable", bin.Counter, "KAFKA_BROKERS=127.0.0.1:1", "KAFKA_BROKERS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), tt.bin)
			cmd.Env = []string{tt.env, "HTTP_ADDR=127.0.0.1:0", "KAFKA_DIAL_TIMEOUT=3s", "OUTPUT_DIR=", "BROKER_DATA_DIR=" + t.TempDir()}
			start := time.Now()
			done := make(chan struct{})
			var out []byte
			var err error
			go func() { out, err = cmd.CombinedOutput(); close(done) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("still running after 20s; output:\n%s", out)
			}
			if err == nil {
				t.Fatalf("exited 0; want a failure. Output:\n%s", out)
			}
			var errLines []string
			for _, l := range Lines(string(out)) {
				if !strings.Contains(l, "level=INFO") {
					errLines = append(errLines, l)
				}
			}
			if len(errLines) != 1 || !strings.Contains(errLines[0], tt.want) {
				t.Errorf("want one error line naming %s, got:\n%s", tt.want, out)
			}
			t.Logf("%s in %s", errLines, time.Since(start).Round(time.Millisecond))
		})
	}
}
