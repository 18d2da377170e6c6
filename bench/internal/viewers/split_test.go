package viewers

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/votestream/votestream/bench/internal/bed"
)

// TestSplitPrint checks the split table's goal, pair by pair: each loaded
// run over the alone run of its own pair, the median of those ratios.
func TestSplitPrint(t *testing.T) {
	run := func(votes int64, counter, server, updates float64, p99 time.Duration) splitRun {
		return splitRun{row: bed.Row{Votes: votes, Seconds: 1}, counter: counter, server: server, updates: updates,
			report: viewerReport{delays: []time.Duration{p99}}}
	}
	v := SplitRuns{Config: Config{Viewers: 10, PollRate: 5}}
	// Three pairs: split loaded over alone 0.90, 0.96, 0.99; hybrid 0.5 each.
	for _, a := range []int64{100, 100, 200} {
		v.runs[splitAlone] = append(v.runs[splitAlone], run(a, 1, 0, 0, 0))
		v.runs[hybridAlone] = append(v.runs[hybridAlone], run(a, 1, 0, 0, 0))
		v.runs[hybridLoaded] = append(v.runs[hybridLoaded], run(a/2, 1, 0, 0, 3*time.Second))
		v.runs[splitStandIn] = append(v.runs[splitStandIn], run(a, 1, 1, 100, 0))
	}
	for _, l := range []int64{90, 96, 198} {
		v.runs[splitLoaded] = append(v.runs[splitLoaded], run(l, 1, 2, 100, time.Second))
	}
	var out bytes.Buffer
	v.Print(&out)
	for _, want := range []string{
		"0.96, met (hybrid: 0.50)",
		"| split: ROLE=count, the load on ROLE=serve | 96 | 0.96 (0.90, 0.96, 0.99) |",
		"over the stand-in's: 2.00",
		"p99 delay 1s / 3s",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, out.String())
		}
	}
}
