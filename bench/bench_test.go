package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/votestream/votestream/e2e"
)

// TestMain lets the bench start this test binary as its workers, as it
// starts its own binary under make bench.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "naive-produce", "naive-count", "raw-read", "stand-in":
			main()
			os.Exit(0)
		}
	}
	os.Exit(m.Run())
}

// TestBenchSmoke runs the whole bench on a tiny election, so make bench
// cannot rot: every step runs against the real binaries and the counts
// are checked exactly, only the numbers are meaningless.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker and the services")
	}
	bins := e2e.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg, err := parseConfig([]string{"-bin", filepath.Dir(bins.Producer), "-scale", "0.0002", "-rate-scale", "0.0002",
		"-timeout", "2m", "-viewers", "200"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	var out, log bytes.Buffer
	if err := orchestrate(ctx, cfg, &out, &log); err != nil {
		t.Fatalf("bench: %v\n%s", err, log.String())
	}
	for _, want := range []string{"raw read ceiling", "naive producer", "naive counter", "votestream counter", "median rate ratio", "end to end", "latency at 100k votes/s", "broker (kfake)", "200 viewers on /events", "viewers: 200 on /events", "200 viewers on a stand-in server", "viewers on a stand-in:", "viewers' CPU, in cores"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("\n%s", out.String())
}

func TestComparePairs(t *testing.T) {
	ceil := []row{{votes: 100, seconds: 1, cpu: 1e-4}, {votes: 100, seconds: 2, cpu: 1e-4}, {votes: 100, seconds: 1, cpu: 2e-4}}
	cnt := []row{{votes: 100, seconds: 2, cpu: 2e-4}, {votes: 100, seconds: 2, cpu: 1.5e-4}, {votes: 100, seconds: 4, cpu: 2e-4}}
	p := comparePairs(ceil, cnt)
	if want := 0.5; p.wall != want {
		t.Errorf("median rate ratio: got %v, want %v (ratios %v)", p.wall, want, p.walls)
	}
	if want := 1.5; p.cpu != want {
		t.Errorf("median CPU ratio: got %v, want %v (ratios %v)", p.cpu, want, p.cpus)
	}
	if got, want := medianRow(cnt).seconds, 2.0; got != want {
		t.Errorf("median counter run: got %v s, want %v s", got, want)
	}
}

// TestParseConfigRejects checks that flags out of range stop the bench
// with a message naming the flag, before anything starts.
func TestParseConfigRejects(t *testing.T) {
	for _, args := range [][]string{{"-repeat", "0"}, {"-poll-rate", "-1"}} {
		_, err := parseConfig(args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("parseConfig(%q) = %v, want an error naming %s", args, err, args[0])
		}
	}
	cfg, err := parseConfig([]string{"-poll-rate", "0"}, &bytes.Buffer{})
	if err != nil || cfg.pollRate != 0 {
		t.Errorf("parseConfig(-poll-rate 0) = %+v, %v; want no polling", cfg.pollRate, err)
	}
}
