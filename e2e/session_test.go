package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestKafkaSessionTimeoutRefused starts a counter with a
// GROUP_SESSION_TIMEOUT that passes validation (1s or more) but is under
// Apache Kafka's default group.min.session.timeout.ms (6s). The broker
// refuses every join; the counter must stop at once, non-zero, with one
// line naming the setting and the broker's bounds, rather than rejoin
// every second for good, never ready.
func TestKafkaSessionTimeoutRefused(t *testing.T) {
	bin := Binaries(t)
	// The test cluster's 1s minimum set back to Kafka's default.
	k := StartKafka(t, KafkaOptions{Props: map[string]string{"group.min.session.timeout.ms": "6000"}})
	env := NewEnv(t, k, 2)
	counter := Start(t, "counter", bin.Counter, env.Vars("GROUP_SESSION_TIMEOUT=2s")...)
	err := counter.Wait(2 * time.Minute)
	out := counter.Output()
	if err == nil || strings.Contains(err.Error(), "still running") {
		t.Fatalf("counter: %v, want it to exit non-zero", err)
	}
	const want = "GROUP_SESSION_TIMEOUT=2s: the broker refuses it"
	var lines []string
	for l := range strings.Lines(out) {
		if strings.Contains(l, want) {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "this broker allows 6s to 30m0s (group.min.session.timeout.ms, group.max.session.timeout.ms)") {
		t.Errorf("%d lines saying %q, want one naming the broker's bounds:\n%s", len(lines), want, out)
	}
	// A fresh cluster may answer the first join that its coordinator is
	// not ready; that rejoin is right. The refusal must not be retried.
	for l := range strings.Lines(out) {
		if strings.Contains(l, "rejoining the group afresh") && strings.Contains(l, "Invalid Session Timeout") {
			t.Errorf("the counter rejoined after the refusal: %s", l)
		}
	}
}
