package e2e

import (
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestChaosConfig starts each service with one invalid setting: it must
// exit non-zero within seconds, having written exactly one line that is not
// an ordinary info log, and that line must name the variable at fault.
func TestChaosConfig(t *testing.T) {
	bins := Binaries(t)
	// A port nobody listens on: bound, then closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	// A port that accepts connections and never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() }) // after the parallel subtests

	both := []string{"producer", "counter"}
	cases := []struct {
		services []string
		env      []string
		variable string // the line must name it
		says     string // and say this
	}{
		{both, []string{"KAFKA_DIAL_TIMEOUT=5"}, "KAFKA_DIAL_TIMEOUT", "missing unit"},
		{both, []string{"KAFKA_DIAL_TIMEOUT=-2s"}, "KAFKA_DIAL_TIMEOUT", "must be positive"},
		{both, []string{"KAFKA_METADATA_MAX_AGE=10ms"}, "KAFKA_METADATA_MAX_AGE", "must be at least 100ms"},
		{[]string{"producer"}, []string{"BATCH_INTERVAL=5 seconds"}, "BATCH_INTERVAL", "duration"},
		{[]string{"producer"}, []string{"BATCH_INTERVAL=-1s"}, "BATCH_INTERVAL", "must not be negative"},
		{[]string{"counter"}, []string{"BATCH_MAX_WAIT=soon"}, "BATCH_MAX_WAIT", "duration"},
		{[]string{"counter"}, []string{"GROUP_SESSION_TIMEOUT=100ms"}, "GROUP_SESSION_TIMEOUT", "at least 1s"},
		{[]string{"producer"}, []string{"VOTES_PER_BATCH=-5"}, "VOTES_PER_BATCH", "must be 1 to"},
		{[]string{"producer"}, []string{"VOTES_PER_BATCH=many"}, "VOTES_PER_BATCH", "invalid syntax"},
		{[]string{"counter"}, []string{"BATCH_MAX_RECORDS=-1"}, "BATCH_MAX_RECORDS", "at least 1"},
		{[]string{"producer"}, []string{"KAFKA_COMPRESSION=brotli"}, "KAFKA_COMPRESSION", "must be none, gzip, snappy, lz4 or zstd"},
		{[]string{"producer"}, []string{"SCALE=2"}, "SCALE", "at most 1"},
		{[]string{"producer"}, []string{"SCALE=0"}, "SCALE", "more than 0"},
		{[]string{"producer"}, []string{"SCALE=half"}, "SCALE", "invalid syntax"},
		{[]string{"producer"}, []string{"SEED=-1"}, "SEED", "whole number"},
		{both, []string{"KAFKA_PARTITIONS=0"}, "KAFKA_PARTITIONS", "must be 1 to 10000"},
		{both, []string{"KAFKA_CREATE_TOPICS=maybe"}, "KAFKA_CREATE_TOPICS", "invalid syntax"},
		{both, []string{"LOG_LEVEL=verbose"}, "LOG_LEVEL", "must be debug"},
		{both, []string{"KAFKA_BROKERS=localhost"}, "KAFKA_BROKERS", "not host:port"},
		{both, []string{"KAFKA_BROKERS="}, "KAFKA_BROKERS", "empty"},
		{both, []string{"KAFKA_BROKERS=" + closed, "KAFKA_DIAL_TIMEOUT=2s"}, "KAFKA_BROKERS", "connection refused"},
		{both, []string{"KAFKA_BROKERS=" + silent.Addr().String(), "KAFKA_DIAL_TIMEOUT=2s"}, "KAFKA_DIAL_TIMEOUT", "did not answer within 2s"},
		{[]string{"broker"}, []string{"BROKER_ADDR=nowhere"}, "BROKER_ADDR", "not host:port"},
		{[]string{"broker"}, []string{"LOG_FORMAT=xml"}, "LOG_FORMAT", "must be text or json"},
	}
	for _, c := range cases {
		for _, svc := range c.services {
			t.Run(svc+"/"+strings.Join(c.env, ","), func(t *testing.T) {
				t.Parallel()
				bin := map[string]string{"producer": bins.Producer, "counter": bins.Counter, "broker": bins.Broker}[svc]
				cmd := exec.Command(bin)
				// Anything not under test points at the unreachable port, so a
				// setting that is wrongly accepted fails fast too.
				cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HTTP_ADDR=127.0.0.1:0", "OUTPUT_DIR=",
					"KAFKA_BROKERS=" + closed, "KAFKA_DIAL_TIMEOUT=2s"}, c.env...)
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
				took := time.Since(start)
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() == 0 {
					t.Errorf("exit: %v, want a non-zero exit code", err)
				}
				if took > 10*time.Second {
					t.Errorf("took %s to fail, want within seconds", took)
				}
				var errLines []string
				if strings.Contains(string(out), "WARNING: DATA RACE") {
					t.Errorf("data race:\n%s", out)
				}
				for _, l := range Lines(string(out)) {
					if strings.Contains(l, "level=INFO") {
						continue
					}
					errLines = append(errLines, l)
				}
				if len(errLines) != 1 {
					t.Fatalf("got %d error lines, want 1:\n%s", len(errLines), out)
				}
				l := errLines[0]
				if !strings.HasPrefix(l, svc+": ") || !strings.Contains(l, c.variable) || !strings.Contains(l, c.says) {
					t.Errorf("got %q, want one line starting %q that names %s and says %q", l, svc+": ", c.variable, c.says)
				}
			})
		}
	}
}
