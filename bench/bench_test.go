package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/votestream/votestream/bench/internal/pipeline"
	"github.com/votestream/votestream/bench/internal/workers"
	"github.com/votestream/votestream/e2e"
)

// TestMain lets the bench start this test binary as its workers, as it
// starts its own binary under make bench.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		if os.Args[1] == "stand-in" || slices.Contains(workers.Names, os.Args[1]) {
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
	cfg, err := pipeline.ParseConfig([]string{"-bin", filepath.Dir(bins.Producer), "-scale", "0.0002", "-rate-scale", "0.0002",
		"-timeout", "2m", "-viewers", "200", "-split-pairs", "1"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	var out, log bytes.Buffer
	if err := pipeline.Run(ctx, cfg, &out, &log); err != nil {
		t.Fatalf("bench: %v\n%s", err, log.String())
	}
	for _, want := range []string{"raw read ceiling", "naive producer", "naive counter", "votestream counter", "median rate ratio", "end to end", "latency at 100k votes/s", "broker (kfake)", "200 viewers on /events", "viewers: 200 on /events", "200 viewers on a stand-in server", "viewers on a stand-in:", "viewers' CPU, in cores", "ROLE=count, 200 viewers on a ROLE=serve replica", "ROLE=hybrid, the same 200 viewers"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("\n%s", out.String())
}
